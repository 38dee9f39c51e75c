// Each service's own MongoDB user: readWrite on its own database and nothing else.
//
// docker-compose.yml mounts this into the mongo image's /docker-entrypoint-initdb.d/, which runs
// it once, as the root user, when the mongodb-data volume is first initialised. The passwords
// come from the container's environment (MONGODB_PASSWORD_<SERVICE>, from .env). A password
// changed later must be changed in MongoDB too (docs/security.md, "Rotating secrets").
// tests/unit/test_compose.py checks SERVICES against the register's services.
const SERVICES = ["orders", "consent", "disclosure", "erasure"];

for (const service of SERVICES) {
  const variable = `MONGODB_PASSWORD_${service.toUpperCase()}`;
  const password = process.env[variable];
  if (!password) {
    throw new Error(`${variable} is not set; docker compose passes it from .env`);
  }
  db.getSiblingDB(service).createUser({
    user: service,
    pwd: password,
    roles: [{ role: "readWrite", db: service }],
  });
  print(`MongoDB user ${service}: readWrite on database ${service}`);
}

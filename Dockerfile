# One image for all four services; docker-compose.yml picks the service with its command
# (`python -m services.<name>`) and defines each one's health check.
#
#   docker build -t kokemuskauppa-register .
#   docker run --rm kokemuskauppa-register python -m services.orders
#
# The build stage installs the project and its runtime dependencies (no dev extras) under
# /install; the final image copies only that, so neither the source tree nor pip's or the
# build's caches end up in it. No secret is baked in: settings come from the environment.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src
COPY . .
RUN pip install --prefix=/install .


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 register \
    && useradd --system --uid 10001 --gid register --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin register \
    && install -d -o register -g register /app

COPY --from=build /install /usr/local

# Not the source tree: `python -m services.<name>` imports the installed packages. DATA_DIR
# (the embedded store, used only where MONGODB_URL is unset) is relative to it.
WORKDIR /app
# The `register` user, by number so that a runtime can tell it is not root.
USER 10001:10001

# The health server of each service; compose sets HEALTH_PORT=8080 and HEALTH_HOST=0.0.0.0.
EXPOSE 8080

# No service by default: each compose service (or `docker run`) names its own command.
CMD ["rekisteri", "--help"]

"""The test's side of RabbitMQ: a fresh virtual host per test, and the management API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlsplit, urlunsplit
from urllib.request import Request, urlopen


@dataclass(frozen=True)
class Broker:
    url: str
    management_url: str

    @property
    def admin_credentials(self) -> tuple[str, str]:
        parts = urlsplit(self.url)
        return parts.username or "guest", parts.password or "guest"

    def url_for(self, vhost: str, user: str | None = None, password: str | None = None) -> str:
        parts = urlsplit(self.url)
        admin_user, admin_password = self.admin_credentials
        netloc = f"{quote(user or admin_user, safe='')}:{quote(password or admin_password, safe='')}@{parts.hostname}:{parts.port or 5672}"
        return urlunsplit((parts.scheme, netloc, "/" + quote(vhost, safe=""), "", ""))

    async def management(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._management, method, path, body)

    def _management(self, method: str, path: str, body: Any) -> Any:
        user, password = self.admin_credentials
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = Request(
            self.management_url.rstrip("/") + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        try:
            with urlopen(request, timeout=10) as response:
                payload = response.read()
        except HTTPError as error:
            if method == "DELETE" and error.code == 404:
                return None
            raise
        return json.loads(payload) if payload else None

    async def create_vhost(self) -> str:
        vhost = f"test-{uuid.uuid4().hex[:12]}"
        await self.management("PUT", f"/api/vhosts/{vhost}")
        user, _ = self.admin_credentials
        await self.management(
            "PUT",
            f"/api/permissions/{vhost}/{quote(user, safe='')}",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        return vhost

    async def delete_vhost(self, vhost: str) -> None:
        await self.management("DELETE", f"/api/vhosts/{vhost}")

    @asynccontextmanager
    async def fresh_vhost(self) -> AsyncIterator[str]:
        """A new virtual host, deleted afterwards: yields an AMQP URL into it, as the admin."""
        vhost = await self.create_vhost()
        try:
            yield self.url_for(vhost)
        finally:
            await self.delete_vhost(vhost)

    async def delete_users(self, prefix: str) -> None:
        """Users are not per virtual host: a test deletes the provider users it made."""
        for user in await self.management("GET", "/api/users") or []:
            if user["name"].startswith(prefix):
                await self.management("DELETE", f"/api/users/{quote(user['name'], safe='')}")

    async def wait_until_drained(
        self, vhost_url: str, queues: list[str], within: float = 90
    ) -> None:
        """Until no message is ready or unacknowledged in any of the queues (the management
        API's figures lag by its statistics interval, a few seconds)."""
        vhost = quote(urlsplit(vhost_url).path[1:], safe="")
        deadline = time.monotonic() + within
        while True:
            counts = {
                name: (
                    await self.management("GET", f"/api/queues/{vhost}/{quote(name, safe='')}")
                ).get("messages", 1)
                for name in queues
            }
            if not any(counts.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"queues not drained after {within:g} s: {counts}")
            await asyncio.sleep(0.5)

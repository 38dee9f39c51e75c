"""The few calls of RabbitMQ's management HTTP API the register makes.

Its callers run with an administrator's credentials, and only when needed: `rekisteri rabbitmq
provision` (every party's user, from `shared.permissions`, and the register's exchanges, queues
and bindings) and `rekisteri providers credentials` (a provider's user and its queues). The
disclosure service asks only who it is (`tags`), to refuse to run as an administrator. Plain
urllib, run in a worker thread so an event loop keeps serving. Request bodies carry passwords:
they are never logged, and errors name the call and the status only.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen

from faststream.rabbit import RabbitExchange, RabbitQueue

from shared.permissions import Binding, Permissions, TopicPermissions

TIMEOUT_SECONDS = 10.0


class RabbitMQAdminError(Exception):
    """The management API could not do what was asked; the text is for the operator."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RabbitMQUnreachable(RabbitMQAdminError):
    """The management API did not answer at all (not started yet, or the wrong address)."""


class RabbitMQAdmin:
    def __init__(self, url: str, user: str, password: str) -> None:
        self._url = url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    async def put_vhost(self, vhost: str) -> None:
        """Create the virtual host unless it exists."""
        await self._call("PUT", f"/api/vhosts/{_segment(vhost)}")

    async def user_exists(self, name: str) -> bool:
        return await self._call("GET", f"/api/users/{_segment(name)}", missing_ok=True) is not None

    async def put_user(self, name: str, password: str) -> None:
        """Create the user, or give an existing one a new password; no management tags."""
        await self._call("PUT", f"/api/users/{_segment(name)}", {"password": password, "tags": ""})

    async def set_permissions(self, vhost: str, user: str, permissions: Permissions) -> None:
        await self._call(
            "PUT",
            f"/api/permissions/{_segment(vhost)}/{_segment(user)}",
            {
                "configure": permissions.configure,
                "write": permissions.write,
                "read": permissions.read,
            },
        )

    async def set_topic_permissions(
        self, vhost: str, user: str, permissions: TopicPermissions
    ) -> None:
        """The user's routing keys on one topic exchange (replaces what it had there)."""
        await self._call(
            "PUT",
            f"/api/topic-permissions/{_segment(vhost)}/{_segment(user)}",
            {
                "exchange": permissions.exchange,
                "write": permissions.write,
                "read": permissions.read,
            },
        )

    async def has_permissions(self, vhost: str, user: str) -> bool:
        """Whether the user has any permissions in the virtual host."""
        path = f"/api/permissions/{_segment(vhost)}/{_segment(user)}"
        return await self._call("GET", path, missing_ok=True) is not None

    async def put_exchange(self, vhost: str, exchange: RabbitExchange) -> None:
        """Declare the exchange; one that exists with other arguments is refused (400)."""
        await self._call(
            "PUT",
            f"/api/exchanges/{_segment(vhost)}/{_segment(exchange.name)}",
            {"type": exchange.type.value, **_declaration(exchange)},
        )

    async def put_queue(self, vhost: str, queue: RabbitQueue) -> None:
        """Declare the queue; one that exists with other arguments is refused (400)."""
        await self._call(
            "PUT", f"/api/queues/{_segment(vhost)}/{_segment(queue.name)}", _declaration(queue)
        )

    async def bind(self, vhost: str, binding: Binding) -> None:
        """Bind the queue to the exchange with the routing key (binding again changes nothing)."""
        await self._call(
            "POST",
            f"/api/bindings/{_segment(vhost)}/e/{_segment(binding.exchange)}"
            f"/q/{_segment(binding.queue)}",
            {"routing_key": binding.routing_key, "arguments": {}},
        )

    async def tags(self) -> frozenset[str]:
        """The management tags of the user this client logs in as; none for a user the
        management API does not let in (a user without tags, as every party's is)."""
        try:
            answer = await self._call("GET", "/api/whoami")
        except RabbitMQAdminError as error:
            if error.status == 401:
                return frozenset()
            raise
        tags = answer.get("tags") or []
        # RabbitMQ before 3.10 answers with one comma-separated string.
        return frozenset(tags.split(",") if isinstance(tags, str) else tags) - {""}

    async def close_connections(self, user: str) -> None:
        """End every open connection of the user (logged in with a password just replaced)."""
        await self._call("DELETE", f"/api/connections/username/{_segment(user)}")

    async def _call(
        self, method: str, path: str, body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        return await asyncio.to_thread(self._call_blocking, method, path, body, missing_ok)

    def _call_blocking(self, method: str, path: str, body: Any, missing_ok: bool) -> Any:
        request = Request(
            self._url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=self._headers,
        )
        try:
            with urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                payload = response.read()
        except HTTPError as error:
            if missing_ok and error.code == 404:
                return None
            hint = (
                "; the management user must be an administrator" if error.code in (401, 403) else ""
            )
            raise RabbitMQAdminError(
                f"RabbitMQ's management API answered {error.code} {error.reason} to "
                f"{method} {path}{hint}{_reason(path, error)}",
                error.code,
            ) from None
        except (URLError, OSError) as error:
            raise RabbitMQUnreachable(
                f"RabbitMQ's management API at {self._url} cannot be reached: {error}"
            ) from None
        return json.loads(payload) if payload else {}


def _declaration(resource: RabbitExchange | RabbitQueue) -> dict[str, Any]:
    """What an exchange and a queue are both declared with."""
    return {
        "durable": resource.durable,
        "auto_delete": resource.auto_delete,
        "arguments": resource.arguments or {},
    }


def _segment(name: str) -> str:
    """One path segment: `/` (the default virtual host) becomes `%2F`."""
    return quote(name, safe="")


def _reason(path: str, error: HTTPError) -> str:
    """RabbitMQ's own reason for a refused declaration (`inequivalent arg ...`), which names
    resources and arguments; never for a call about a user, whose body held a password."""
    if error.code != 400 or path.startswith("/api/users/"):
        return ""
    try:
        reason = json.loads(error.read() or b"{}").get("reason")
    except (ValueError, OSError):
        return ""
    return f": {reason}" if isinstance(reason, str) and reason else ""

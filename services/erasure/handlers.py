"""Messages the erasure service consumes, translated into calls on its store."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitRouter
from pydantic import TypeAdapter

from services.erasure.store import ErasureStore
from shared.contracts.erasure import ErasureCommand, ListErasureRequests
from shared.messaging import subscribe_commands
from shared.settings import ServiceSettings
from shared.topology import ops_subscription


def build_router(store: ErasureStore, settings: ServiceSettings) -> RabbitRouter:
    router = RabbitRouter()

    @subscribe_commands(router, ops_subscription("erasure"), TypeAdapter(ErasureCommand), settings)
    async def on_command(command: ErasureCommand, actor: str) -> Any:
        match command:
            case ListErasureRequests(open_only=open_only):
                return await store.requests(open_only)

    return router

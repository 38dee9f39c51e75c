"""Commands served by the erasure service."""

from __future__ import annotations

from typing import Literal

from shared.contracts.fields import Contract


class ListErasureRequests(Contract):
    command: Literal["erasure.list"] = "erasure.list"
    open_only: bool = False


ErasureCommand = ListErasureRequests  # becomes a union as the erasure commands arrive

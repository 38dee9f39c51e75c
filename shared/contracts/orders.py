"""Commands served by the orders service."""

from __future__ import annotations

from shared.contracts.erasure import ReportSubject

OrdersCommand = ReportSubject  # becomes a union as more commands arrive

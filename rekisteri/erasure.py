"""`rekisteri erasure`: erasure requests, their progress and their receipts."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from rekisteri.output import build, call, emit, emit_record, json_option
from rekisteri.report import named_person, person_options
from shared.contracts.erasure import ListErasureRequests, RequestErasure, ShowErasureRequest

POLL_SECONDS = 0.5
SETTLED = ("completed", "stuck")


@click.group()
def erasure() -> None:
    """Erasure requests: erase a person everywhere, follow it, get the receipt."""


def _status(request: dict[str, Any]) -> str:
    status = request["status"]
    if request.get("missing"):
        status += f" (waiting for {', '.join(request['missing'])})"
    return status + (" OVERDUE" if request.get("overdue") else "")


def _print_receipt(request: dict[str, Any]) -> None:
    click.echo(json.dumps(request["receipt"], indent=2, ensure_ascii=False))


@erasure.command("request")
@person_options
@click.option(
    "--reason",
    required=True,
    type=click.Choice(["subject-request", "misuse"]),
    help="The person asked (GDPR Art. 17), or the company erases a customer who misused it.",
)
@click.option("--note", default=None, help="For staff, e.g. a ticket number; no personal data.")
@click.option(
    "--wait", is_flag=True, help="Wait until it is completed or stuck; print the receipt."
)
@click.option(
    "--wait-timeout",
    default=120.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds --wait waits.",
)
@click.pass_context
def request(
    context: click.Context,
    email: str | None,
    order_id: str | None,
    role: str | None,
    reason: str,
    note: str | None,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Erase a person from every service, tell the providers, keep only what law requires.

    Name the person by --email, or by an order they are on (--order with --role; a gift-card
    recipient may have no email): someone with an email named by an order is erased as if
    named by that email. While an erasure of the same person is open, that one is shown
    instead of a second one. With --wait, exits 1 if the request is stuck or not completed in
    time.
    """
    named_person(email, order_id, role)
    command = build(
        RequestErasure, email=email, order_id=order_id, role=role, reason=reason, note=note
    )
    answer = call(context, "erasure", command)
    request_id = answer["request_id"]
    click.echo(f"erasure request {request_id}: {_status(answer)}; deadline {answer['deadline']}")
    if not wait:
        return
    deadline = time.monotonic() + wait_timeout
    while answer["status"] not in SETTLED and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        answer = call(context, "erasure", ShowErasureRequest(request_id=request_id))
    if answer["status"] == "completed":
        _print_receipt(answer)
        return
    click.echo(f"erasure request {request_id}: {_status(answer)}", err=True)
    sys.exit(1)


@erasure.command("status")
@click.argument("request_id")
@json_option
@click.pass_context
def status(context: click.Context, request_id: str, as_json: bool) -> None:
    """Where REQUEST_ID stands; the receipt once it is completed."""
    answer = call(context, "erasure", build(ShowErasureRequest, request_id=request_id))
    if as_json:
        emit_record(answer, as_json=True)
        return
    receipt = answer.pop("receipt", None)
    answer["status"] = _status(answer)
    if named := answer.get("order"):
        answer["order"] = f"{named['role']} of order {named['order_id']}"
    emit_record({k: v for k, v in answer.items() if v not in (None, [], False)}, as_json=False)
    if receipt is not None:
        click.echo("receipt:")
        _print_receipt({"receipt": receipt})


@erasure.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only erasures not completed yet.")
@json_option
@click.pass_context
def list_(context: click.Context, open_only: bool, as_json: bool) -> None:
    """Erasure and access requests, oldest first: who asked, when, where each stands."""
    result = call(context, "erasure", ListErasureRequests(open_only=open_only))
    if not as_json:
        for request in result:
            request["status"] = _status(request)
    emit(
        result,
        as_json,
        ["request_id", "type", "status", "reason", "requested_by", "received_at", "deadline"],
    )

"""`make bench-scale`: what a service costs in a large register against a small one (issue #17).

For each size (default 10,000, 100,000 and 1,000,000 people; the first is the baseline) this
fills a fresh register on the embedded default, SQLite files in a temporary DATA_DIR, through
the services' store ports (tools/bench_register.py: one order, the newsletter permission and one
sent disclosure per person), then starts each of the four services as a process
(`python -m services.<name>`) in a fresh vhost of the local RabbitMQ, one after the other, and
measures:

- start time: from spawning the process until its /ready answers 200, the least of `STARTS`;
- resident memory: VmRSS once ready, and again after the orders below (and the peak, VmHWM);
- per-order cost: the CPU seconds (user + system) each service spent on `--orders` new orders
  published as the web shop publishes them (persistent, to `webshop`, `order.placed`) at
  `--rate` a second, counted from just before the first is published until every disclosure
  has reached its provider's queue, the three `order.placed` queues are empty and their
  consumers idle; divided by the orders. Sent in `ROUNDS` rounds, the least taken. Half the
  orders are by people already in the register, half by new people. A warm-up of
  `WARM_UP_ORDERS` goes first, not counted: a service's first messages pay for its lazy
  set-up, which is the same at any size.

The least of several, because other work on the machine can only ever add to a figure: in a
run beside other test suites, each service's start at 1,000,000 people took 0.2 to 0.6 s longer
than at 10,000, the erasure service's too, which holds nobody.

Then, unless `--repeats 0`, staff's operations of issue #8, sent with `rekisteri`'s own client
and code from this process (starting the tool takes over a second, a constant that would hide
any growth): an access report to every service, an erasure until the erasure service shows it
completed, and the whole newsletter export into a file (which must then hold everyone not
erased); each `--repeats` times after one unmeasured warm-up (the export: no warm-up), the
median.

It prints a table per size, each figure's ratio to the baseline, and the goal check: per-order
cost at the largest size within 1.3 times the baseline's, start time within 1 s of it, and
resident memory under 150 MB (10^6 bytes) per service. `--mongodb` runs it on the MongoDB of
`MONGODB_URL` instead of SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from rekisteri.client import OpsClient
from rekisteri.consent import _export
from shared import topology
from shared.contracts.consent import ExportAudience
from shared.contracts.erasure import ReportSubject, RequestErasure, ShowErasureRequest
from tests.e2e.harness import Register
from tests.e2e.rabbitmq import Broker
from tools.bench import ORDER_QUEUES, ROLES, Traffic, cpu_seconds
from tools.bench_orders import web_shop_order
from tools.bench_register import (
    broker_from_environment,
    check_logs,
    drop,
    email,
    fill,
    new_register,
    people_sizes,
    pids,
    start,
    status_mb,
)

DEFAULT_PEOPLE = (10_000, 100_000, 1_000_000)
DEFAULT_ORDERS = 2_000
DEFAULT_RATE = 100.0
"""Orders a second: the same at every size, and well within what the register keeps up with
on a small machine. As fast as they go, a service's cost per order falls with the throughput
it reaches (larger batches), which other load on the machine moves by a quarter either way."""
WARM_UP_ORDERS = 200
STARTS, ROUNDS = 3, 4
SERVICES = topology.SERVICES
COST_GOAL, START_GOAL_S, RSS_GOAL_MB = 1.3, 1.0, 150.0
OPERATIONS = ("access report", "erasure", "audience export")
ANSWER_TIMEOUT = 120.0
"""Seconds to wait for a staff command's reply or an export page."""

Say = Callable[[str], None]


@dataclass
class Service:
    start_s: float = 0.0
    """The least of `starts_s`."""
    starts_s: list[float] = field(default_factory=list)
    rss_ready_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_rss_mb: float = 0.0
    cpu_ms_per_order: float = 0.0
    """The least of `cpu_ms_per_order_rounds`."""
    cpu_ms_per_order_rounds: list[float] = field(default_factory=list)


@dataclass
class StaffTimings:
    seconds: dict[str, list[float]] = field(default_factory=dict)
    """Operation → each measured run, in seconds."""
    exported_rows: int = 0

    def median_ms(self, operation: str) -> float:
        return statistics.median(self.seconds[operation]) * 1000

    def export_ms_per_1000(self) -> float:
        """The export grows with the people exported; per person it should not."""
        return self.median_ms("audience export") * 1000 / self.exported_rows


@dataclass
class Size:
    people: int
    fill_s: float = 0.0
    services: dict[str, Service] = field(default_factory=dict)
    staff: StaffTimings | None = None


def web_shop_orders(people: int, count: int) -> list[bytes]:
    """`count` new orders: the even ones by people of the register chosen at random, the odd
    ones by new people (`count // 2` of them)."""
    chooser = random.Random(people)
    occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))
    orders = []
    for number in range(count):
        person = chooser.randrange(people) if number % 2 == 0 else people + number
        order = web_shop_order(
            person,
            event_id=str(uuid.uuid4()),
            order_id=f"L-{uuid.uuid4().hex[:12]}",
            email=email(person),
            occurred_at=occurred_at,
            newsletter=True,
        )
        orders.append(orjson.dumps(order))
    return orders


async def start_each(register: Register, size: Size, say: Say) -> None:
    """Start the services one at a time, so that each start is timed alone; `STARTS` times,
    stopped in between."""
    for round_ in range(STARTS):
        if round_ and any((codes := await asyncio.to_thread(register.stop)).values()):
            raise RuntimeError(f"a service did not stop cleanly: exit codes {codes}")
        for name in SERVICES:
            started = time.perf_counter()
            await start(register, [name])
            service = size.services.setdefault(name, Service())
            service.starts_s.append(time.perf_counter() - started)
            service.rss_ready_mb = status_mb(pids(register, [name])[name], "VmRSS")
    for name, service in size.services.items():
        service.start_s = min(service.starts_s)
        say(f"  {name} ready in {service.start_s:.2f} s at best, {service.rss_ready_mb:.0f} MB")


async def order_load(
    url: str, register: Register, size: Size, orders: int, rate: float | None, say: Say
) -> int:
    """The per-order cost of each service, and its memory after; how many new people the
    orders brought into the register."""
    running = pids(register)
    consumers = [running[role] for role in ROLES]
    warm_up_orders = min(WARM_UP_ORDERS, orders)
    every = web_shop_orders(size.people, warm_up_orders + orders)
    warm_up, measured = every[:warm_up_orders], every[warm_up_orders:]
    async with Traffic(url).running() as traffic:
        say(f"  warm-up: {len(warm_up):,} orders")
        await traffic.send(warm_up)
        await traffic.settle(ORDER_QUEUES, consumers)
        rounds = min(ROUNDS, orders)
        pace = f"at {rate:g}/s" if rate else "as fast as they go"
        say(f"  {orders:,} orders {pace}, in {rounds} rounds")
        # Consecutive slices: each round has as many returning customers as new ones.
        for batch in (
            measured[i * orders // rounds : (i + 1) * orders // rounds] for i in range(rounds)
        ):
            before = {name: cpu_seconds(pid) for name, pid in running.items()}
            await traffic.send(batch, rate=rate, progress=sys.stderr.isatty())
            await traffic.settle(ORDER_QUEUES, consumers)
            for name, pid in running.items():
                used_ms = (cpu_seconds(pid) - before[name]) * 1000
                size.services[name].cpu_ms_per_order_rounds.append(used_ms / len(batch))
        for name, pid in running.items():
            service = size.services[name]
            service.cpu_ms_per_order = min(service.cpu_ms_per_order_rounds)
            service.rss_after_mb = status_mb(pid, "VmRSS")
            service.peak_rss_mb = status_mb(pid, "VmHWM")
    say(
        f"  {traffic.throughput():.0f} orders/s; CPU ms/order at best "
        + ", ".join(f"{n} {s.cpu_ms_per_order:.2f}" for n, s in size.services.items())
    )
    return len(every) // 2


async def bench_size(
    broker: Broker, mongodb_url: str | None, people: int, options: argparse.Namespace, say: Say
) -> Size:
    say(f"{people:,} people:")
    size = Size(people)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
        async with broker.fresh_vhost() as url:
            register = new_register(url, Path(scratch) / "data", mongodb_url)
            try:
                size.fill_s = await fill(register, people, say)
                try:
                    await start_each(register, size, say)
                    rate = options.rate or None
                    new_people = await order_load(url, register, size, options.orders, rate, say)
                    if options.repeats:
                        size.staff = await measure_staff(
                            url, people, people + new_people, options.repeats, Path(scratch), say
                        )
                finally:
                    codes = await asyncio.to_thread(register.stop)
                if any(codes.values()):
                    raise RuntimeError(f"a service did not stop cleanly: exit codes {codes}")
                check_logs(register)
            finally:
                await drop(register, SERVICES)
    return size


# --- staff's operations (issue #8) -----------------------------------------------------------


async def access_report(client: OpsClient, person: int) -> None:
    command = ReportSubject(email=email(person))
    await asyncio.gather(*(client.request(service, command) for service in topology.SERVICES))


async def erasure(client: OpsClient, person: int) -> None:
    """Until the erasure service shows the request completed: every participant reported."""
    command = RequestErasure(email=email(person), reason="subject-request", note="bench")
    answer = await client.request("erasure", command)
    show = ShowErasureRequest(request_id=answer["request_id"])
    async with asyncio.timeout(ANSWER_TIMEOUT):
        while answer["status"] != "completed":
            await asyncio.sleep(0.005)
            answer = await client.request("erasure", show)


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def measure_staff(
    url: str, people: int, audience: int, repeats: int, scratch: Path, say: Say
) -> StaffTimings:
    """Access reports and erasures of people of the register chosen at random, a different one
    each time, then the export of the newsletter audience (`audience` people before the
    erasures)."""
    timings = StaffTimings()
    chosen = random.Random(people).sample(range(people), 2 * (repeats + 1))
    reported, erased = chosen[: repeats + 1], chosen[repeats + 1 :]
    async with OpsClient(url, ANSWER_TIMEOUT) as client:
        say("  access reports, erasures")
        # The first of each warms the services up (connections, caches) and is not counted.
        reports = [await timed(lambda p=p: access_report(client, p)) for p in reported]
        erasures = [await timed(lambda p=p: erasure(client, p)) for p in erased]
        timings.seconds |= {"access report": reports[1:], "erasure": erasures[1:]}
        say("  audience exports")
        timings.exported_rows = audience - len(erased)
        timings.seconds["audience export"] = [
            await timed(lambda: export(client, scratch / "audience.csv", timings.exported_rows))
            for _ in range(repeats)
        ]
    say("  median ms: " + ", ".join(f"{o} {timings.median_ms(o):.1f}" for o in OPERATIONS))
    return timings


async def export(client: OpsClient, output: Path, expected: int) -> None:
    with output.open("w", encoding="utf-8", newline="") as file:
        written = await _export(client, ExportAudience(purpose="newsletter"), file)
    with output.open(encoding="utf-8") as file:
        rows = sum(1 for _ in file) - 1  # the header row
    if not written == rows == expected:
        raise AssertionError(
            f"export incomplete: {rows} rows in the file, {written} counted, {expected} expected"
        )


# --- the report ----------------------------------------------------------------------------------


def size_table(size: Size, baseline: Size) -> str:
    lines = [
        f"{size.people:,} people (filled in {size.fill_s:.0f} s)",
        f"  {'service':12}{'start (s)':>11}{'RSS ready':>11}{'RSS after':>11}{'peak RSS':>10}"
        f"{'CPU ms/order':>14}{'cost ratio':>12}",
    ]
    for name, s in size.services.items():
        base = baseline.services[name].cpu_ms_per_order
        # The erasure service takes no orders: its figure is a few idle ticks.
        ratio = f"{s.cpu_ms_per_order / base:12.2f}" if name in ROLES and base else f"{'-':>12}"
        lines.append(
            f"  {name:12}{s.start_s:11.2f}{s.rss_ready_mb:8.1f} MB{s.rss_after_mb:8.1f} MB"
            f"{s.peak_rss_mb:7.1f} MB{s.cpu_ms_per_order:14.3f}{ratio}"
        )
    return "\n".join(lines)


def staff_table(measured: Sequence[Size]) -> str:
    timed = [size for size in measured if size.staff is not None]
    if not timed:
        return ""
    lines = ["staff's operations, median ms:"]
    lines.append(f"  {'operation':34}" + "".join(f"{s.people:>12,}" for s in timed) + "   ratio")
    for operation in OPERATIONS:
        values = [s.staff.median_ms(operation) for s in timed if s.staff is not None]
        lines.append(
            f"  {operation:34}"
            + "".join(f"{value:12.1f}" for value in values)
            + f"{values[-1] / values[0]:8.2f}"
        )
    per_1000 = [s.staff.export_ms_per_1000() for s in timed if s.staff is not None]
    lines.append(
        f"  {'audience export per 1,000 people':34}"
        + "".join(f"{value:12.1f}" for value in per_1000)
        + f"{per_1000[-1] / per_1000[0]:8.2f}"
    )
    return "\n".join(lines)


def goals(baseline: Size, largest: Size) -> dict[str, dict[str, float | bool]]:
    """Each service's figures at the largest size against the goals."""
    checked: dict[str, dict[str, float | bool]] = {}
    for name, large in largest.services.items():
        small = baseline.services[name]
        cost_ratio = (
            large.cpu_ms_per_order / small.cpu_ms_per_order if small.cpu_ms_per_order else 0
        )
        start_difference = large.start_s - small.start_s
        rss = large.peak_rss_mb  # the most it held since it started, the order load included
        checked[name] = {
            "cost_ratio": cost_ratio,
            # The erasure service takes no orders: its "cost" is idle ticks.
            "cost_ok": name not in ROLES or cost_ratio <= COST_GOAL,
            "start_difference_s": start_difference,
            "start_ok": start_difference <= START_GOAL_S,
            "rss_mb": rss,
            "rss_ok": rss < RSS_GOAL_MB,
        }
    return checked


def goal_table(baseline: Size, largest: Size) -> str:
    def mark(ok: object) -> str:
        return "ok" if ok else "MISSED"

    lines = [
        f"goal check, {largest.people:,} against {baseline.people:,} people:",
        f"  {'service':12}{f'cost ratio (<= {COST_GOAL})':>24}"
        f"{f'start diff (<= {START_GOAL_S:g} s)':>26}{f'RSS, peak (< {RSS_GOAL_MB:g} MB)':>26}",
    ]
    for name, g in goals(baseline, largest).items():
        cost = f"{g['cost_ratio']:.2f} {mark(g['cost_ok'])}" if name in ROLES else "- (no orders)"
        start = f"{g['start_difference_s']:+.2f} s {mark(g['start_ok'])}"
        rss = f"{g['rss_mb']:.1f} MB {mark(g['rss_ok'])}"
        lines.append(f"  {name:12}{cost:>24}{start:>26}{rss:>26}")
    return "\n".join(lines)


def report(measured: Sequence[Size], store: str, orders: int) -> str:
    baseline, largest = measured[0], measured[-1]
    parts = [f"store: {store}; {orders:,} orders per size; {os.cpu_count()} cores"]
    parts += [size_table(size, baseline) for size in measured]
    parts += [staff_table(measured), goal_table(baseline, largest)]
    return "\n\n".join(part for part in parts if part)


def figures(measured: Sequence[Size], store: str, orders: int) -> dict[str, object]:
    return {
        "store": store,
        "orders": orders,
        "people": [size.people for size in measured],
        "sizes": [asdict(size) for size in measured],
        "goals": goals(measured[0], measured[-1]),
    }


async def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="make bench-scale",
        description="Start time, memory and per-order cost of each service at several register "
        "sizes, against the smallest (the baseline), on the embedded SQLite store.",
    )
    parser.add_argument(
        "--people",
        type=people_sizes,
        default=DEFAULT_PEOPLE,
        help="register sizes, smallest (the baseline) first (default 10000,100000,1000000)",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=DEFAULT_ORDERS,
        help=f"orders whose cost is measured at each size (default {DEFAULT_ORDERS:,})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help=f"orders a second (default {DEFAULT_RATE:g}; 0: as fast as confirms allow)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of each staff operation (access report, erasure, audience export) at each "
        "size, the median taken (default 3; 0 leaves them out)",
    )
    parser.add_argument(
        "--mongodb", action="store_true", help="on the MongoDB of MONGODB_URL, not SQLite"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(arguments)
    if options.orders < 1 or options.repeats < 0 or options.rate < 0:
        parser.error("--orders must be at least 1, --repeats and --rate at least 0")
    if options.people[0] < 2 * (options.repeats + 1):
        parser.error("a register needs a person for each report and each erasure")
    mongodb_url = (os.environ.get("MONGODB_URL") or None) if options.mongodb else None
    if options.mongodb and mongodb_url is None:
        parser.error("--mongodb needs MONGODB_URL")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    store = "MongoDB" if mongodb_url else "SQLite (a file per service, in a temporary DATA_DIR)"
    broker = broker_from_environment()
    measured: list[Size] = []
    for people in options.people:
        measured.append(await bench_size(broker, mongodb_url, people, options, say))
        # Said at once, so that a failure at a later size does not lose this one.
        say(size_table(measured[-1], measured[0]))
    print(report(measured, store, options.orders))
    if options.json:
        options.json.write_text(json.dumps(figures(measured, store, options.orders), indent=2))


if __name__ == "__main__":
    asyncio.run(main())

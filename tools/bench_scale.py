"""`make bench-scale`: whether staff's operations cost the same in a large register as in a small one.

Issue #8 asks that an erasure, an access report and the audience export (per person exported)
cost the same at 1,000,000 people as at 10,000: every query must be served by an index. For each
size this fills a fresh register (tools/bench_register.py: one order, the newsletter permission and
one disclosure per person), starts the four services as processes against the real RabbitMQ in
a fresh vhost, and times, each `--repeats` times after one unmeasured warm-up, taking the median:

- access report: `rekisteri report`'s command (`ReportSubject` to every service at once);
- erasure: `rekisteri erasure request`'s command, until the erasure service shows it completed
  (awaited on the participants' `erasure.reported` events, then confirmed by asking it);
- audience export: `rekisteri marketing audience --purpose newsletter --output FILE`'s own
  export loop, checking that the file has every person not erased.

They are sent in this process with `rekisteri`'s own client and code: starting the tool takes
about 1.6 s on the build machine, a constant that would hide a report's growth in the ratio.

Only a real MongoDB (`MONGODB_URL`) can answer the question: the embedded store keeps every
document in Python memory, so its timings say nothing about MongoDB's indexes, I/O or cache (the
index-coverage check every test runs is what covers the query shapes there). Without
`MONGODB_URL` the default run refuses; with explicit `--people` it runs on the embedded store,
which checks that the benchmark itself works.
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
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aio_pika
import orjson

from rekisteri.client import OpsClient
from rekisteri.consent import _export
from shared import topology
from shared.contracts.consent import ExportAudience
from shared.contracts.erasure import ReportSubject, RequestErasure, ShowErasureRequest
from tests.e2e.rabbitmq import Broker
from tools.bench_register import broker_from_environment, email, running_register, sizes

DEFAULT_PEOPLE = (10_000, 1_000_000)
OPERATIONS = ("access report", "erasure", "audience export")
ANSWER_TIMEOUT = 120.0
"""Seconds to wait for a reply or an export page: generous, a large register is slow to start."""
NEEDS_MONGODB = """\
make bench-scale: the 10,000 / 1,000,000 people run needs a real MongoDB (set MONGODB_URL).
Without it the services use the embedded store, which keeps everything in Python memory: its
timings cannot show whether MongoDB's indexes serve the queries (the index-coverage check in the
test suite covers that). To check the benchmark itself on the embedded store, give explicit
sizes, e.g. --people 500,5000.
"""

Say = Callable[[str], None]


@dataclass
class Size:
    people: int
    seconds: dict[str, list[float]] = field(default_factory=dict)
    """Operation → each measured run, in seconds."""
    exported_rows: int = 0

    def median_ms(self, operation: str) -> float:
        return statistics.median(self.seconds[operation]) * 1000


class Reports:
    """The participants' `erasure.reported` events, on a queue of the benchmark's own: an
    erasure is complete only once orders, consent and disclosure have all reported."""

    def __init__(self) -> None:
        self._services: dict[str, set[str]] = defaultdict(set)
        self._arrived = asyncio.Condition()

    async def listen(self, url: str) -> aio_pika.abc.AbstractConnection:
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        exchange = await channel.get_exchange(topology.REGISTER_EVENTS_EXCHANGE, ensure=False)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key=topology.ERASURE_REPORTED)
        await queue.consume(self._on_report, no_ack=True)
        return connection

    async def _on_report(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        report = orjson.loads(message.body)
        async with self._arrived:
            self._services[report["request_id"]].add(report["service"])
            self._arrived.notify_all()

    async def all_in(self, request_id: str) -> None:
        everyone = set(topology.ERASURE_PARTICIPANTS)
        async with asyncio.timeout(ANSWER_TIMEOUT), self._arrived:
            await self._arrived.wait_for(lambda: self._services[request_id] >= everyone)


async def access_report(client: OpsClient, person: int) -> None:
    command = ReportSubject(email=email(person))
    await asyncio.gather(*(client.request(service, command) for service in topology.SERVICES))


async def erasure(client: OpsClient, reports: Reports, person: int) -> None:
    command = RequestErasure(email=email(person), reason="subject-request", note="bench")
    answer = await client.request("erasure", command)
    request_id = answer["request_id"]
    if answer["status"] == "completed":  # nothing was held on the person: no reports come
        return
    await reports.all_in(request_id)
    # The erasure service takes the last report from its own queue at about the same moment.
    deadline = time.monotonic() + ANSWER_TIMEOUT
    show = ShowErasureRequest(request_id=request_id)
    while (await client.request("erasure", show))["status"] != "completed":
        if time.monotonic() > deadline:
            raise TimeoutError(f"erasure {request_id} not completed after every report")


async def export(client: OpsClient, output: Path) -> int:
    with output.open("w", encoding="utf-8", newline="") as file:
        return await _export(client, ExportAudience(purpose="newsletter"), file)


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await work()
    return time.perf_counter() - started


async def measure(url: str, size: Size, repeats: int, scratch: Path, say: Say) -> None:
    # People from all over the register, a different one for each report and erasure.
    chosen = random.Random(size.people).sample(range(size.people), 2 * (repeats + 1))
    reported, erased = chosen[: repeats + 1], chosen[repeats + 1 :]
    reports = Reports()
    listener = await reports.listen(url)
    try:
        async with OpsClient(url, ANSWER_TIMEOUT) as client:
            say("  access reports, erasures")
            # The first of each warms the services up (connections, caches) and is not counted.
            size.seconds["access report"] = [
                await timed(lambda p=p: access_report(client, p)) for p in reported
            ][1:]
            size.seconds["erasure"] = [
                await timed(lambda p=p: erasure(client, reports, p)) for p in erased
            ][1:]
            say("  audience exports")
            output = scratch / "audience.csv"
            size.seconds["audience export"] = []
            expected = size.people - len(erased)
            for _ in range(repeats):
                started = time.perf_counter()
                written = await export(client, output)
                size.seconds["audience export"].append(time.perf_counter() - started)
                with output.open(encoding="utf-8") as file:
                    rows = sum(1 for _ in file) - 1
                if not written == rows == expected:
                    raise AssertionError(
                        f"export incomplete: {rows} rows in the file, {written} counted, "
                        f"{expected} expected"
                    )
            size.exported_rows = expected
    finally:
        await listener.close()


async def bench_size(
    broker: Broker, mongodb_url: str | None, people: int, repeats: int, scratch: Path, say: Say
) -> Size:
    say(f"{people:,} people:")
    size = Size(people)
    async with running_register(broker, mongodb_url, people, scratch, say) as (url, _):
        await measure(url, size, repeats, scratch, say)
    # Said at once, so that a failure at the next size does not lose this one.
    say("  median ms: " + ", ".join(f"{op} {size.median_ms(op):.1f}" for op in OPERATIONS))
    return size


def table(small: Size, large: Size) -> str:
    rows = [(f"{name} (ms)", small.median_ms(name), large.median_ms(name)) for name in OPERATIONS]
    # The export grows with the people exported; per person it should not.
    rows.append(
        (
            "audience export per 1,000 people (ms)",
            small.median_ms("audience export") * 1000 / small.exported_rows,
            large.median_ms("audience export") * 1000 / large.exported_rows,
        )
    )
    lines = [f"{'people':40}{small.people:>12,}{large.people:>12,}{'large/small':>13}"]
    lines += [f"{name:40}{s:12.1f}{b:12.1f}{b / s:13.2f}" for name, s, b in rows]
    return "\n".join(lines)


def figures(small: Size, large: Size, store: str, repeats: int) -> dict[str, object]:
    return {
        "store": store,
        "repeats": repeats,
        "people": [small.people, large.people],
        "median_ms": {
            name: {
                "small": small.median_ms(name),
                "large": large.median_ms(name),
                "ratio": large.median_ms(name) / small.median_ms(name),
            }
            for name in OPERATIONS
        },
        "sizes": [asdict(small), asdict(large)],
    }


async def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="make bench-scale",
        description="Erasure, access report and audience export at two register sizes, and "
        "the ratio large/small. The default 10,000 and 1,000,000 people need MONGODB_URL.",
    )
    parser.add_argument(
        "--people",
        type=sizes,
        help="the two register sizes, small,large (default 10000,1000000; needs MONGODB_URL)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="measured runs of each operation (default 3)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(arguments)
    if options.repeats < 1:
        parser.error("--repeats must be at least 1")
    if options.people and options.people[0] < 2 * (options.repeats + 1):
        parser.error("a register needs a person for each report and each erasure")

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    mongodb_url = os.environ.get("MONGODB_URL") or None
    if mongodb_url is None:
        if options.people is None:
            parser.exit(2, NEEDS_MONGODB)
        say(
            "WARNING: no MONGODB_URL: on the embedded store (Python memory); these figures "
            "check the benchmark, they say nothing about how MongoDB scales"
        )
        store = "embedded store"
    else:
        store = "MongoDB"
    small_people, large_people = options.people or DEFAULT_PEOPLE
    broker = broker_from_environment()
    measured = []
    for people in (small_people, large_people):
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
            measured.append(
                await bench_size(broker, mongodb_url, people, options.repeats, Path(scratch), say)
            )
    small, large = measured
    print(f"store: {store}; median of {options.repeats} runs each")
    print(table(small, large))
    if options.json:
        options.json.write_text(json.dumps(figures(small, large, store, options.repeats), indent=2))


if __name__ == "__main__":
    asyncio.run(main())

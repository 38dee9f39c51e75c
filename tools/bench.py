"""`make bench`: the register's end-to-end speed, against a baseline measured in the same run.

Both systems get the same work in a fresh virtual host each: the web shop publishes N orders
(persistent, confirmed, a window of confirms in flight) to `webshop`, and providers consume
their `disclosures.<id>` queues. The register runs as its four service processes; the
baseline is the same topology (exchanges, quorum queues and their arguments, three consumers
of `order.placed`, one forwarding to the providers' queues and one announcing on
`register.events` as the consent service does, prefetch, persistence, confirms)
with plain aio-pika consumers that only acknowledge and forward (tools/bench_baseline.py).

Both systems run side by side, each idle while the other is measured, and each gets its N
orders in two halves, in the order baseline, register, register, baseline (and so again at
half rate): a machine whose speed drifts during the run weighs on both alike, where measuring
one system after the other would charge the drift to the second.

Reported per system: throughput from the first publish to the last disclosure received (both
halves' orders over both halves' time, and each half's own); publish-to-disclosure latency
percentiles at full load and at half that rate; CPU seconds per 1,000 orders of each process.
The ratio register/baseline is what to judge: the machine's own speed cancels out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson

from shared import topology
from shared.database import describe_store
from shared.senders import login_of
from shared.settings import ServiceSettings
from tests.e2e.harness import REPOSITORY, rekisteri
from tools import bench_audience_memory, bench_framework
from tools.bench_orders import PROVIDERS, web_shop_order
from tools.bench_register import broker_from_environment, new_register

WARM_UP_ORDERS = 300
HALF_RATE_ORDERS = 3000
PUBLISH_WINDOW = 500
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BROKER = "RabbitMQ (whole node)"
IDLE_INTERVAL, IDLE_CPU = 0.5, 1.5 / CLOCK_TICKS
"""Consumers count as idle when together they used at most one clock tick in this interval."""
ROLES = ("orders", "consent", "disclosure")
"""The consumers of `order.placed`, in both systems."""
ORDER_QUEUES = [topology.order_placed_subscription(role).queue_name for role in ROLES]
SYSTEMS = ("baseline", "register")
HALVES = ("baseline", "register", "register", "baseline")
"""The order in which the systems get their halves of the orders (see the module docstring)."""


@dataclass
class Run:
    throughput: float = 0.0
    halves_throughput: list[float] = field(default_factory=list)
    """Each half's own throughput at full load, in the order run."""
    latency_full_ms: dict[str, float] = field(default_factory=dict)
    latency_half_ms: dict[str, float] = field(default_factory=dict)
    half_rate: float = 0.0
    cpu_seconds_per_1000: dict[str, float] = field(default_factory=dict)


def make_orders(count: int) -> list[bytes]:
    """Orders as the web shop sends them, each for one of the providers in turn."""
    occurred_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - 1))
    return [
        orjson.dumps(
            web_shop_order(
                number,
                event_id=str(uuid.uuid4()),
                order_id=f"B-{uuid.uuid4().hex[:12]}",
                email=f"buyer-{number}@example.fi",
                occurred_at=occurred_at,
                newsletter=number % 2 == 0,
            )
        )
        for number in range(count)
    ]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


def local_broker_pid() -> int | None:
    """RabbitMQ's Erlang VM, when it runs on this machine: its CPU is part of the cost too."""
    for status in Path("/proc").glob("[0-9]*/comm"):
        try:
            if status.read_text().strip() == "beam.smp":
                return int(status.parent.name)
        except OSError:
            continue
    return None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Traffic:
    """The web shop and the providers, on connections of their own."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._user = login_of(url)
        self.published: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self._expected = 0
        self._done = asyncio.Event()

    @asynccontextmanager
    async def running(self) -> Any:
        publisher = await aio_pika.connect_robust(self._url)
        consumer = await aio_pika.connect_robust(self._url)
        try:
            channel = await consumer.channel()
            await channel.set_qos(prefetch_count=2000)
            for provider in PROVIDERS:
                queue = await channel.get_queue(topology.provider_queue_name(provider))
                await queue.consume(self._on_disclosure, no_ack=True)
            self._channel = await publisher.channel(publisher_confirms=True)
            self._exchange = await self._channel.get_exchange(
                topology.WEBSHOP_EXCHANGE, ensure=False
            )
            yield self
        finally:
            await publisher.close()
            await consumer.close()

    async def _on_disclosure(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        order_id = orjson.loads(message.body)["order_id"]
        self.received.setdefault(order_id, time.perf_counter())
        if len(self.received) >= self._expected:
            self._done.set()

    async def send(
        self, orders: Sequence[bytes], rate: float | None = None, progress: bool = False
    ) -> None:
        """Publish every order (at `rate` per second, or as fast as confirms allow) and wait
        until each has reached its provider."""
        self.published.clear()
        self.received.clear()
        self._expected = len(orders)
        self._done.clear()
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        started = time.perf_counter()

        async def publish(body: bytes) -> None:
            try:
                self.published[orjson.loads(body)["order_id"]] = time.perf_counter()
                await self._exchange.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        # The services take the web shop's events only from its login.
                        user_id=self._user,
                    ),
                    routing_key=topology.ORDER_PLACED,
                )
            finally:
                window.release()

        tasks = []
        for number, body in enumerate(orders):
            if rate is not None:
                await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            await window.acquire()
            tasks.append(asyncio.create_task(publish(body)))
        await asyncio.gather(*tasks)
        reporter = asyncio.create_task(self._report(progress)) if progress else None
        await asyncio.wait_for(self._done.wait(), timeout=600)
        if reporter is not None:
            reporter.cancel()
            print(file=sys.stderr)

    async def _report(self, progress: bool) -> None:
        while progress:
            done = len(self.received)
            bar = "#" * int(40 * done / self._expected)
            print(f"\r  [{bar:<40}] {done}/{self._expected}", end="", file=sys.stderr, flush=True)
            await asyncio.sleep(0.5)

    async def settle(self, queue_names: Sequence[str], pids: Sequence[int]) -> None:
        """Until the queues are empty and the consuming processes have used no CPU for a
        moment: every message taken has then been handled."""
        await until_each_queue(
            self._url, queue_names, lambda result: not result.message_count, "not empty", 600
        )
        async with asyncio.timeout(600):
            used = sum(cpu_seconds(pid) for pid in pids)
            while True:
                await asyncio.sleep(IDLE_INTERVAL)
                used, before = sum(cpu_seconds(pid) for pid in pids), used
                # Idle services still tick now and then (heartbeats, timers).
                if used - before <= IDLE_CPU:
                    return

    def duration(self) -> float:
        """Seconds from the first publish to the last disclosure received, of the last send."""
        return max(self.received.values()) - min(self.published.values())

    def throughput(self) -> float:
        return len(self.received) / self.duration()

    def latencies(self) -> list[float]:
        return [self.received[o] - self.published[o] for o in self.received]


@dataclass
class System:
    """A system under test, running: its consumers' processes and its traffic."""

    pids: dict[str, int]
    traffic: Traffic


def split(orders: int) -> dict[str, Iterator[int]]:
    """Each system's two halves of `orders`, in the order `HALVES` hands them out."""
    return {name: iter(((orders + 1) // 2, orders // 2)) for name in SYSTEMS}


async def measure(
    systems: Mapping[str, System], orders: int, say: Callable[[str], None]
) -> dict[str, Run]:
    runs = {name: Run() for name in systems}
    for system in systems.values():
        await system.traffic.send(make_orders(WARM_UP_ORDERS))
        await system.traffic.settle(ORDER_QUEUES, list(system.pids.values()))
    await _at_full_load(systems, runs, orders, say)
    await _at_half_rate(systems, runs, min(orders, HALF_RATE_ORDERS), say)
    return runs


async def _at_full_load(
    systems: Mapping[str, System], runs: dict[str, Run], orders: int, say: Callable[[str], None]
) -> None:
    """Each system's orders as fast as confirms allow, in halves; sets all but the half-rate
    latencies."""
    broker = local_broker_pid()
    elapsed = dict.fromkeys(systems, 0.0)
    cpu: dict[str, Counter[str]] = {name: Counter() for name in systems}
    latencies: dict[str, list[float]] = {name: [] for name in systems}
    sizes = split(orders)
    for name in HALVES:
        system, size = systems[name], next(sizes[name])
        say(f"  {name}: full load, {size} orders")
        pids = system.pids if broker is None else {**system.pids, BROKER: broker}
        before = {process: cpu_seconds(pid) for process, pid in pids.items()}
        await system.traffic.send(make_orders(size), progress=sys.stderr.isatty())
        # The last disclosure can arrive before the other consumers are done: count all of
        # their work, and start the next half on an idle system.
        await system.traffic.settle(ORDER_QUEUES, list(system.pids.values()))
        cpu[name].update(
            {process: cpu_seconds(pid) - before[process] for process, pid in pids.items()}
        )
        elapsed[name] += system.traffic.duration()
        runs[name].halves_throughput.append(system.traffic.throughput())
        latencies[name] += system.traffic.latencies()
    for name, run in runs.items():
        run.throughput = orders / elapsed[name]
        run.latency_full_ms = percentiles(latencies[name])
        run.cpu_seconds_per_1000 = {p: seconds * 1000 / orders for p, seconds in cpu[name].items()}
        run.half_rate = run.throughput / 2


async def _at_half_rate(
    systems: Mapping[str, System], runs: dict[str, Run], orders: int, say: Callable[[str], None]
) -> None:
    """Each system's orders at half its own full-load throughput, in halves."""
    latencies: dict[str, list[float]] = {name: [] for name in systems}
    sizes = split(orders)
    for name in HALVES:
        system, size = systems[name], next(sizes[name])
        say(f"  {name}: half rate, {size} orders at {runs[name].half_rate:.0f}/s")
        await system.traffic.send(make_orders(size), rate=runs[name].half_rate)
        await system.traffic.settle(ORDER_QUEUES, list(system.pids.values()))
        latencies[name] += system.traffic.latencies()
    for name, run in runs.items():
        run.latency_half_ms = percentiles(latencies[name])


async def declare_baseline_topology(url: str) -> None:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        webshop = await _declare_exchange(channel, topology.webshop_exchange())
        for role in ROLES:
            subscription = topology.order_placed_subscription(role)
            queue = await _declare_queue(channel, subscription.queue)
            await queue.bind(webshop, routing_key=topology.ORDER_PLACED)
        await _declare_exchange(channel, topology.register_events_exchange())
        disclosures = await _declare_exchange(channel, topology.disclosures_exchange())
        for provider in PROVIDERS:
            queue = await _declare_queue(channel, topology.provider_queue(provider))
            await queue.bind(disclosures, routing_key=provider)


async def _declare_exchange(channel: Any, exchange: Any) -> Any:
    return await channel.declare_exchange(
        exchange.name, exchange.type.value, durable=True, arguments=exchange.arguments
    )


async def _declare_queue(channel: Any, queue: Any) -> Any:
    return await channel.declare_queue(queue.name, durable=True, arguments=queue.arguments)


@asynccontextmanager
async def baseline_running(url: str, prefetch: int) -> AsyncIterator[dict[str, int]]:
    """The baseline's consumers, one process per role, consuming: yields their pids."""
    await declare_baseline_topology(url)
    consumers = {
        role: subprocess.Popen(  # noqa: ASYNC220 - started once, waited on at the end
            [sys.executable, "-m", "tools.bench_baseline", role, url, str(prefetch)], cwd=REPOSITORY
        )
        for role in ROLES
    }
    try:
        await _wait_for_consumers(
            url, [topology.order_placed_subscription(r).queue_name for r in consumers]
        )
        yield {role: process.pid for role, process in consumers.items()}
    finally:
        for process in consumers.values():
            process.terminate()
            process.wait(timeout=30)


async def until_each_queue(
    url: str,
    queue_names: Sequence[str],
    done: Callable[[Any], bool],
    what: str,
    within: float,
) -> None:
    """Until `done(declaration result)` holds for each queue in turn, polled: RabbitMQ tells a
    queue's depth and consumers only when asked. (A plain connection: a robust one answers a
    repeated declaration from its cache.)"""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        deadline = time.monotonic() + within
        for name in queue_names:
            while True:
                declared = await channel.declare_queue(name, passive=True)
                if done(declared.declaration_result):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name}: {what} after {within:g} s")
                await asyncio.sleep(0.05)


async def _wait_for_consumers(url: str, queues: list[str], within: float = 60) -> None:
    await until_each_queue(url, queues, lambda result: result.consumer_count, "no consumer", within)


@asynccontextmanager
async def register_running(url: str, data_dir: Path) -> AsyncIterator[dict[str, int]]:
    """The four services, started and given the benchmark's providers: yields their pids."""
    register = new_register(url, data_dir, os.environ.get("MONGODB_URL") or None)
    register.start()
    try:
        for provider in PROVIDERS:
            added = await asyncio.to_thread(
                rekisteri, url, "providers", "add", provider, "--name", provider, "--country", "FI"
            )
            if added.returncode != 0:
                raise RuntimeError(added.stderr)
        yield {
            name: s.process.pid for name, s in register.services.items() if s.process is not None
        }
    finally:
        register.stop()


def table(baseline: Run, project: Run) -> str:
    rows = [
        (
            "throughput (orders/s)",
            baseline.throughput,
            project.throughput,
            project.throughput / baseline.throughput,
        )
    ]
    for label, attribute in (("full load", "latency_full_ms"), ("half rate", "latency_half_ms")):
        for cut in ("p50", "p95", "p99"):
            b, p = getattr(baseline, attribute)[cut], getattr(project, attribute)[cut]
            rows.append((f"latency {label} {cut} (ms)", b, p, p / b))
    lines = [f"{'':34}{'baseline':>12}{'register':>12}{'ratio':>8}"]
    lines += [f"{label:34}{b:12.1f}{p:12.1f}{r:8.2f}" for label, b, p, r in rows]
    halves = iter(baseline.halves_throughput), iter(project.halves_throughput)
    in_order = [f"{name} {next(halves[SYSTEMS.index(name)]):.0f}" for name in HALVES]
    lines.append(f"full load, each half in the order run (orders/s): {', '.join(in_order)}")
    lines.append("CPU seconds per 1,000 orders:")
    for name, value in baseline.cpu_seconds_per_1000.items():
        lines.append(f"  baseline {name:25}{value:12.2f}")
    for name, value in project.cpu_seconds_per_1000.items():
        lines.append(f"  register {name:37}{value:12.2f}")
    return "\n".join(lines)


def at_least_two(text: str) -> int:
    """`--orders`: each system gets two halves, neither of them empty."""
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("at least 2 orders: each system gets two halves")
    return value


async def main(arguments: Sequence[str] | None = None) -> None:
    # `--scale` and `--audience-memory` are benchmarks of their own, with their own options.
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--scale", action="store_true")
    chooser.add_argument("--audience-memory", action="store_true")
    chooser.add_argument("--framework", action="store_true")
    chosen, arguments = chooser.parse_known_args(arguments)
    if chosen.scale:
        # Imported here: tools/bench_scale.py measures with this module's `Traffic`.
        from tools import bench_scale

        return await bench_scale.main(arguments)
    if chosen.audience_memory:
        return await bench_audience_memory.main(arguments)
    if chosen.framework:
        return await bench_framework.main(arguments)
    parser = argparse.ArgumentParser(
        prog="make bench",
        description=__doc__.split("\n\n")[0],
        epilog="--scale: cost against register size (tools/bench_scale.py; --scale --help). "
        "--audience-memory: the audience export's peak memory (tools/bench_audience_memory.py). "
        "--framework: FastStream's own CPU per message against aio-pika (tools/bench_framework.py).",
    )
    parser.add_argument(
        "--orders",
        type=at_least_two,
        default=20_000,
        help="orders per system at full load, in two halves (default 20,000)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(arguments)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    broker = broker_from_environment()
    mongodb_url = os.environ.get("MONGODB_URL") or None
    settings = ServiceSettings(mongodb_url=mongodb_url)
    # Without MongoDB the register's SQLite files live in the run's temporary directory.
    store = (
        describe_store(settings)
        if mongodb_url
        else "SQLite, a file per service under a temporary directory"
    )
    say(f"store: {store}; machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        async with AsyncExitStack() as stack:
            systems: dict[str, System] = {}
            for name in SYSTEMS:
                url = await stack.enter_async_context(broker.fresh_vhost())
                running = (
                    baseline_running(url, settings.prefetch_count)
                    if name == "baseline"
                    else register_running(url, Path(scratch) / "data")
                )
                pids = await stack.enter_async_context(running)
                traffic = await stack.enter_async_context(Traffic(url).running())
                systems[name] = System(pids, traffic)
            say(f"both running; each system gets {options.orders} orders in two halves")
            results = await measure(systems, options.orders, say)
    print(table(results["baseline"], results["register"]))
    if options.json:
        figures = {name: asdict(run) for name, run in results.items()}
        figures["ratio"] = results["register"].throughput / results["baseline"].throughput
        figures["orders"] = options.orders
        figures["store"] = store
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

"""`make bench-audience-memory`: the marketing export's memory, at two audience sizes.

Issue #8 asks that the peak memory of `rekisteri marketing audience` not grow with the number of
people exported. For each size (default 10,000 and 100,000 people, all in the newsletter
audience) this fills a fresh consent database (tools/bench_register.py), starts the consent
service in a fresh vhost, and runs the real command,
`rekisteri marketing audience --purpose newsletter --output FILE`, as a child process. Reported:

- the child's peak RSS, from `wait4` on that very child, spawned by a fresh, small helper
  process: a child's `ru_maxrss` starts from the high-water mark of the process that spawned
  it (Linux carries it over at exec), and this benchmark's own process holds a whole register
  after filling it. (RUSAGE_CHILDREN would be worse still: the largest of all children.)
- the rows in the file, which must be every person: the proof that the export was complete;
- how much the consent service's peak RSS rose during the export (its peak is reset just
  before, through /proc/<pid>/clear_refs), and the export's wall time, which includes the
  tool's start-up.

It works on the SQLite default and with `MONGODB_URL`. The consent service reads the audience a
page at a time from its store either way; its growth during the export is the part the export
adds.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.e2e.harness import REPOSITORY
from tests.e2e.rabbitmq import Broker
from tools.bench_register import broker_from_environment, running_register, sizes

DEFAULT_PEOPLE = (10_000, 100_000)
SERVICE = "consent"
EXPORT_TIMEOUT = 600.0
KIB = 1024
REKISTERI_EXPORT = (
    *("-m", "rekisteri", "marketing", "audience"),
    *("--purpose", "newsletter", "--output"),
)
SPAWN_AND_MEASURE = """
import os, sys
pid = os.posix_spawn(
    sys.executable,
    [sys.executable, *sys.argv[1:]],
    os.environ,
    file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)],
)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""
"""Run by a fresh `python -I`, about 10 MiB: spawns `python ARGS` (stdout to /dev/null, stderr
inherited) and prints its exit code and peak RSS in KiB."""

Say = Callable[[str], None]


@dataclass
class Export:
    people: int
    rows: int
    peak_rss_mib: float
    """Of the `rekisteri` process that exported."""
    consent_growth_mib: float | None
    """How much the consent service's peak RSS rose during the export; None where /proc does
    not let it be reset."""
    seconds: float


def status_kib(pid: int, field: str) -> int:
    """A `VmRSS:`-style line of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def reset_peak(pid: int) -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+, own processes only)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_export(url: str, output: Path, log: Path) -> tuple[int, float, float]:
    """The real command as a child: its exit code, peak RSS (MiB) and wall time (s)."""
    started = time.perf_counter()
    with log.open("wb") as stderr:
        measured = subprocess.run(
            [sys.executable, "-I", "-c", SPAWN_AND_MEASURE, *REKISTERI_EXPORT, str(output)],
            cwd=REPOSITORY,
            env={**os.environ, "RABBITMQ_URL": url, "REKISTERI_TIMEOUT": "60"},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=EXPORT_TIMEOUT,
            check=True,
        )
    code, peak_kib = (int(value) for value in measured.stdout.split())
    return code, peak_kib / KIB, time.perf_counter() - started


def count_rows(output: Path) -> int:
    with output.open(encoding="utf-8", newline="") as file:
        return sum(1 for _ in csv.reader(file)) - 1  # the header row


async def measure(
    broker: Broker, mongodb_url: str | None, people: int, scratch: Path, say: Say
) -> Export:
    say(f"{people:,} people:")
    async with running_register(broker, mongodb_url, people, scratch, say, [SERVICE]) as (
        url,
        register,
    ):
        consent = register.services[SERVICE].process
        assert consent is not None
        before = status_kib(consent.pid, "VmRSS")
        resettable = reset_peak(consent.pid)
        output, log = scratch / "audience.csv", scratch / "rekisteri.log"
        say("  exporting")
        code, peak, seconds = await asyncio.to_thread(run_export, url, output, log)
        growth = (status_kib(consent.pid, "VmHWM") - before) / KIB if resettable else None
    if code != 0:
        raise RuntimeError(f"the export failed ({code}): {log.read_text()[-2000:]}")
    rows = count_rows(output)
    if rows != people:
        raise AssertionError(f"export incomplete: {rows} rows for {people} people")
    # Said at once, so that a failure at the next size does not lose this one.
    say(f"  {rows:,} rows; rekisteri peak RSS {peak:.1f} MiB; {seconds:.1f} s")
    return Export(people, rows, peak, growth, seconds)


def table(small: Export, large: Export) -> str:
    def growth(export: Export) -> str:
        return "n/a" if export.consent_growth_mib is None else f"{export.consent_growth_mib:.1f}"

    lines = [
        f"{'people in the audience':40}{small.people:>12,}{large.people:>12,}{'large/small':>13}",
        f"{'rows written':40}{small.rows:>12,}{large.rows:>12,}",
        f"{'rekisteri peak RSS (MiB)':40}{small.peak_rss_mib:12.1f}{large.peak_rss_mib:12.1f}"
        f"{large.peak_rss_mib / small.peak_rss_mib:13.2f}",
        f"{'consent service RSS growth (MiB)':40}{growth(small):>12}{growth(large):>12}",
        f"{'export wall time, tool start-up incl. (s)':40}{small.seconds:12.1f}"
        f"{large.seconds:12.1f}{large.seconds / small.seconds:13.2f}",
    ]
    return "\n".join(lines)


async def main(arguments: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="make bench-audience-memory",
        description="Peak memory of `rekisteri marketing audience` at two audience sizes.",
    )
    parser.add_argument(
        "--people", type=sizes, default=DEFAULT_PEOPLE, help="small,large (default 10000,100000)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    options = parser.parse_args(arguments)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    mongodb_url = os.environ.get("MONGODB_URL") or None
    store = "embedded store" if mongodb_url is None else "MongoDB"
    broker = broker_from_environment()
    exports = []
    for people in options.people:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
            exports.append(await measure(broker, mongodb_url, people, Path(scratch), say))
    small, large = exports
    print(f"store: {store}")
    print(table(small, large))
    if options.json:
        figures = {"store": store, "exports": [asdict(export) for export in exports]}
        figures["peak_rss_ratio"] = large.peak_rss_mib / small.peak_rss_mib
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    asyncio.run(main())

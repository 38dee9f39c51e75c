"""The benchmarks work: run as a user would, at tiny sizes.

The figures themselves are not judged here (a test machine's timings are noise); what is
checked is what a user would notice: every figure in the tables, exports complete, the JSON
written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import REPOSITORY
from tests.e2e.rabbitmq import Broker

SMALL, LARGE = 50, 200
SCALE_SIZES, SCALE_ORDERS = (200, 400), 100


def bench(
    rabbitmq: Broker, mongodb_url: str | None, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """`make bench ARGS` (without make, which would reinstall the virtualenv)."""
    # The services run on SQLite in the run's temporary directory.
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URL"}
    env.update(RABBITMQ_URL=rabbitmq.url, RABBITMQ_MANAGEMENT_URL=rabbitmq.management_url)
    if mongodb_url is not None:
        env["MONGODB_URL"] = mongodb_url
    return subprocess.run(
        [sys.executable, "-m", "tools.bench", *arguments],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_throughput_bench_compares_the_register_with_its_baseline(
    rabbitmq: Broker, mongodb_url: str | None, tmp_path: Path
) -> None:
    figures = tmp_path / "bench.json"
    done = bench(rabbitmq, mongodb_url, "--orders=100", f"--json={figures}")

    assert done.returncode == 0, done.stderr[-3000:]
    assert next(line for line in done.stdout.splitlines() if line.startswith("throughput"))
    # Each system's two halves on either side of the other's, so drift weighs on both alike.
    halves = next(line for line in done.stdout.splitlines() if "each half" in line)
    assert re.findall(r"(baseline|register) \d+", halves) == [
        "baseline",
        "register",
        "register",
        "baseline",
    ]
    assert "under a temporary directory" in done.stderr or mongodb_url is not None
    written = json.loads(figures.read_text())
    assert written["orders"] == 100
    assert written["ratio"] == written["register"]["throughput"] / written["baseline"]["throughput"]
    for system in ("baseline", "register"):
        halves = written[system]["halves_throughput"]
        assert len(halves) == 2 and all(throughput > 0 for throughput in halves), system
    for system, consumers in (
        ("baseline", {"orders", "consent", "disclosure"}),
        ("register", {"orders", "consent", "disclosure", "erasure"}),
    ):
        run = written[system]
        assert consumers <= set(run["cpu_seconds_per_1000"]), system
        for latencies in (run["latency_full_ms"], run["latency_half_ms"]):
            assert 0 < latencies["p50"] <= latencies["p95"] <= latencies["p99"], system


def test_scale_bench_measures_every_service_at_each_size(
    rabbitmq: Broker, mongodb_url: str | None, tmp_path: Path
) -> None:
    figures = tmp_path / "scale.json"
    # On SQLite whatever the suite runs on: `--mongodb` alone would take MONGODB_URL.
    done = bench(
        rabbitmq,
        mongodb_url,
        "--scale",
        f"--people={SCALE_SIZES[0]},{SCALE_SIZES[1]}",
        f"--orders={SCALE_ORDERS}",
        "--repeats=1",
        f"--json={figures}",
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("store: SQLite")
    for people in SCALE_SIZES:
        assert f"{people:,} people (filled in" in done.stdout
    goal_check = done.stdout.split("goal check")[1].splitlines()
    for service in ("orders", "consent", "disclosure", "erasure"):
        assert next(line for line in goal_check if line.split()[:1] == [service]), service
    for operation in ("access report", "erasure", "audience export"):
        assert any(line.strip().startswith(operation) for line in done.stdout.splitlines())
    written = json.loads(figures.read_text())
    assert written["people"] == list(SCALE_SIZES)
    assert written["orders"] == SCALE_ORDERS
    for size in written["sizes"]:
        for name, service in size["services"].items():
            assert 0 < service["start_s"] < 60, name
            assert 20 < service["rss_ready_mb"] <= service["peak_rss_mb"] < 1000, name
            if name != "erasure":  # it takes no orders
                assert service["cpu_ms_per_order"] > 0, name
        # Half the orders (warm-up and measured) by new people; two people erased before.
        assert size["staff"]["exported_rows"] == size["people"] + SCALE_ORDERS - 2
    assert set(written["goals"]) == {"orders", "consent", "disclosure", "erasure"}


def test_audience_memory_bench_exports_everyone_at_both_sizes(
    rabbitmq: Broker, mongodb_url: str | None, tmp_path: Path
) -> None:
    figures = tmp_path / "memory.json"
    done = bench(
        rabbitmq, mongodb_url, "--audience-memory", f"--people={SMALL},{LARGE}", f"--json={figures}"
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "rekisteri peak RSS (MiB)" in done.stdout
    exports = json.loads(figures.read_text())["exports"]
    assert [(e["people"], e["rows"]) for e in exports] == [(SMALL, SMALL), (LARGE, LARGE)]
    # The tool's own process: tens of MiB, not zero and not some earlier child's.
    assert all(20 < e["peak_rss_mib"] < 1000 for e in exports)


def test_framework_bench_measures_both_clients_and_what_faststream_adds_per_order(
    rabbitmq: Broker, tmp_path: Path
) -> None:
    figures = tmp_path / "framework.json"
    done = bench(rabbitmq, None, "--framework", "--messages=200", "--rounds=2", f"--json={figures}")

    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0] for line in done.stdout.splitlines()}
    assert {"consume", "publish"} <= rows
    assert "extra CPU per order in the register" in done.stdout
    written = json.loads(figures.read_text())
    for kind in ("consume", "publish"):
        # Two runs each, taking turns, every one of them a measured cost.
        assert {client: len(runs) for client, runs in written["runs"][kind].items()} == {
            "aio-pika": 2,
            "faststream": 2,
        }
        assert all(run > 0 for runs in written["runs"][kind].values() for run in runs)

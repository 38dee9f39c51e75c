"""The benchmarks work: run as a user would, at tiny sizes.

The figures themselves are not judged here (a test machine's timings are noise); what is
checked is what a user would notice: every operation in the table, exports complete, the JSON
written, and the 10k/1M run refusing to give meaningless figures without MongoDB.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import REPOSITORY
from tests.e2e.rabbitmq import Broker

SMALL, LARGE = 50, 200


def bench(
    rabbitmq: Broker, mongodb_url: str | None, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """`make bench ARGS` (without make, which would reinstall the virtualenv)."""
    # EMBEDDED_STORE_QUERY_LOG passes on: the fill's and the services' queries are checked too.
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


def test_scale_bench_measures_every_operation_at_both_sizes(
    rabbitmq: Broker, mongodb_url: str | None, tmp_path: Path
) -> None:
    figures = tmp_path / "scale.json"
    done = bench(
        rabbitmq,
        mongodb_url,
        "--scale",
        f"--people={SMALL},{LARGE}",
        "--repeats=1",
        f"--json={figures}",
    )

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for operation in ("access report", "erasure", "audience export"):
        row = next(line for line in lines if line.startswith(f"{operation} (ms)"))
        assert len(row.split()) == len(operation.split()) + 4, row  # name, small, large, ratio
    written = json.loads(figures.read_text())
    assert written["people"] == [SMALL, LARGE]
    assert set(written["median_ms"]) == {"access report", "erasure", "audience export"}
    # Two people erased (a warm-up and the measured one) before the exports.
    assert [size["exported_rows"] for size in written["sizes"]] == [SMALL - 2, LARGE - 2]
    if mongodb_url is None:
        assert "say nothing about how MongoDB scales" in done.stderr


def test_scale_bench_refuses_the_large_run_without_mongodb(
    rabbitmq: Broker, mongodb_url: str | None
) -> None:
    if mongodb_url is not None:
        pytest.skip("with MongoDB the default run is the real 10k/1M benchmark")

    done = bench(rabbitmq, None, "--scale")

    assert done.returncode == 2
    assert "needs a real MongoDB" in done.stderr
    assert done.stdout == ""


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

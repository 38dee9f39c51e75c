"""The `make dev` supervisor (tools/dev.py), run against tiny Python children, not the services.

Each child appends its pid to `<state>/<name>.runs` when it starts. `flaky` exits with code 3
on its first run and stays up on later ones; `steady` stays up; `stubborn` ignores SIGTERM;
`failing` always exits with code 3. A child that stays up prints `up` and, on SIGTERM,
writes `<state>/<name>.stopped` and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tools/ is run from the checkout, not installed as a package
    sys.path.insert(0, str(ROOT))

from shared.urls import mask_password  # noqa: E402
from tools.dev import (  # noqa: E402
    Backoff,
    ChildSpec,
    Supervisor,
    describe_store,
    parse_args,
    service_children,
)

CHILD = """\
import os, signal, sys
from pathlib import Path

name, state = sys.argv[1], Path(sys.argv[2])
runs = state / f"{name}.runs"
with runs.open("a") as file:
    file.write(f"{os.getpid()}\\n")
first_run = len(runs.read_text().split()) == 1
if name == "failing" or (name == "flaky" and first_run):
    print("failing", flush=True)
    sys.exit(3)

def stop(signum, frame):
    (state / f"{name}.stopped").write_text(str(os.getpid()))
    sys.exit(0)

signal.signal(signal.SIGTERM, signal.SIG_IGN if name == "stubborn" else stop)
print("up", flush=True)
while True:
    signal.pause()
"""

SUPERVISOR = """\
import asyncio, sys
from tools.dev import ChildSpec, Supervisor

child, state = sys.argv[1], sys.argv[2]
children = [ChildSpec(name, [sys.executable, child, name, state]) for name in ("alpha", "beta")]
raise SystemExit(asyncio.run(Supervisor(children).run()))
"""

FAST = Backoff(initial=0.05, cap=0.05)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """The children's directory; any child still alive at the end is killed."""
    (tmp_path / "child.py").write_text(CHILD)
    yield tmp_path
    for runs in tmp_path.glob("*.runs"):
        for pid in runs.read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)


def child(state: Path, name: str) -> ChildSpec:
    return ChildSpec(name, [sys.executable, str(state / "child.py"), name, str(state)])


def pids(state: Path, name: str) -> list[int]:
    runs = state / f"{name}.runs"
    return [int(pid) for pid in runs.read_text().split()] if runs.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    return True


def lines_of(output: str, name: str) -> list[str]:
    """What `name` printed, without the prefix."""
    prefixed = (line.partition(" | ") for line in output.splitlines())
    return [text for prefix, _, text in prefixed if prefix.strip() == name]


async def until(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_restarts_a_child_that_dies_while_the_others_keep_running(state: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor([child(state, "flaky"), child(state, "steady")], backoff=FAST, out=out)
    running = asyncio.create_task(supervisor.run(handle_signals=False))

    await until(lambda: "up" in lines_of(out.getvalue(), "flaky"), "flaky's second run")
    await until(lambda: "up" in lines_of(out.getvalue(), "steady"), "steady to start")

    output = out.getvalue()
    assert lines_of(output, "flaky") == ["failing", "up"]
    assert "flaky exited with code 3; restarting in 0.05 s" in lines_of(output, "dev")
    assert len(pids(state, "flaky")) == 2
    [steady] = pids(state, "steady")
    assert alive(steady), "the other child kept running"

    supervisor.request_stop()
    assert await asyncio.wait_for(running, 25) == 0

    for name in ("flaky", "steady"):
        assert (state / f"{name}.stopped").exists(), f"{name} got SIGTERM"
        assert not any(alive(pid) for pid in pids(state, name))
        assert f"{name} stopped (exit code 0)" in lines_of(out.getvalue(), "dev")


async def test_kills_a_child_that_ignores_sigterm_after_the_grace_period(state: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor([child(state, "stubborn")], stop_timeout=0.3, out=out)
    running = asyncio.create_task(supervisor.run(handle_signals=False))
    await until(lambda: "up" in lines_of(out.getvalue(), "stubborn"), "stubborn to start")

    supervisor.request_stop()
    assert await asyncio.wait_for(running, 15) == 0

    said = lines_of(out.getvalue(), "dev")
    assert "stubborn did not stop within 0.3 s; killing it" in said
    assert f"stubborn stopped (exit code {-signal.SIGKILL})" in said
    assert not any(alive(pid) for pid in pids(state, "stubborn"))


async def restarts_of_failing(
    state: Path, count: int, clock: Callable[[], float] = time.monotonic
) -> list[str]:
    """The supervisor's first `count` restart lines for a child that always fails at once,
    with restart delays of 0.01 s doubling up to 0.04 s."""
    out = io.StringIO()
    backoff = Backoff(initial=0.01, cap=0.04, reset_after=60)
    supervisor = Supervisor([child(state, "failing")], backoff=backoff, out=out, clock=clock)
    running = asyncio.create_task(supervisor.run(handle_signals=False))

    def restarts() -> list[str]:
        return [line for line in lines_of(out.getvalue(), "dev") if "restarting" in line]

    await until(lambda: len(restarts()) >= count, f"{count} restarts")
    supervisor.request_stop()
    await asyncio.wait_for(running, 15)
    return restarts()[:count]


async def test_back_off_doubles_up_to_the_cap(state: Path) -> None:
    delays = [line.rsplit(" in ", 1)[1] for line in await restarts_of_failing(state, 4)]
    assert delays == ["0.01 s", "0.02 s", "0.04 s", "0.04 s"]


async def test_back_off_resets_after_a_long_run(state: Path) -> None:
    ticks = itertools.count(step=100.0)  # every run appears to last 100 s
    restarts = await restarts_of_failing(state, 3, clock=lambda: next(ticks))
    assert all(line.endswith("restarting in 0.01 s") for line in restarts)


def test_back_off_delays() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(10_000) == 30


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
async def test_a_signal_stops_every_child_and_exits_0(state: Path, signum: int) -> None:
    script = state / "supervisor.py"
    script.write_text(SUPERVISOR)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(state / "child.py"),
        str(state),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    output: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            output.append(line.decode())

    reader = asyncio.create_task(read())
    try:
        for name in ("alpha", "beta"):
            await until(lambda name=name: "up" in lines_of("".join(output), name), f"{name} up")
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), 25) == 0
        await asyncio.wait_for(reader, 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    for name in ("alpha", "beta"):
        assert (state / f"{name}.stopped").exists(), f"{name} got SIGTERM"
        assert not any(alive(pid) for pid in pids(state, name))
        assert f"{name} stopped (exit code 0)" in lines_of("".join(output), "dev")


def test_store_description_masks_the_password() -> None:
    assert describe_store({}) == "SQLite files under .data/ (one per service)"
    assert describe_store({"DATA_DIR": "/tmp/x/"}) == "SQLite files under /tmp/x/ (one per service)"
    assert describe_store({"MONGODB_URL": "memory://"}) == (
        "SQLite in memory (memory://): data is lost when the services stop"
    )
    assert describe_store({"MONGODB_URL": "mongodb://app:s3cret@db:27017/?tls=true"}) == (
        "MongoDB at mongodb://app:***@db:27017/?tls=true"
    )
    assert mask_password("mongodb://db:27017/") == "mongodb://db:27017/"
    assert mask_password("amqp://guest@mq/") == "amqp://guest@mq/"
    assert "p@ss" not in mask_password("amqp://u:p@ss@mq:5672/vhost")


def test_each_service_gets_its_own_health_port_and_the_environment() -> None:
    args = parse_args(["--services", "consent,orders"])
    children = service_children(args.services, {"MONGODB_URL": "memory://", "HEALTH_PORT": "1"})
    assert [c.name for c in children] == ["consent", "orders"]
    for spec, port in zip(children, ("8082", "8081"), strict=True):
        assert spec.argv == [sys.executable, "-m", f"services.{spec.name}"]
        assert spec.env is not None
        assert spec.env["HEALTH_PORT"] == port
        assert spec.env["MONGODB_URL"] == "memory://"

    all_ports = {
        c.env["HEALTH_PORT"] for c in service_children(parse_args([]).services, {}) if c.env
    }
    assert all_ports == {"8081", "8082", "8083", "8084"}


def test_unknown_service_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--services", "orders,billing"])
    assert "billing" in capsys.readouterr().err

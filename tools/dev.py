"""`make dev`: the services as child processes, like `docker compose up` without Docker.

Each service runs as `python -m services.<name>` with its own HEALTH_PORT; every other setting
is this process's environment passed through unchanged (so without MONGODB_URL the services
keep their data in the embedded store under DATA_DIR). Each line a child prints is prefixed
with its name. A child that exits on its own is restarted after an exponential back-off, like
compose's `restart: unless-stopped`, while the others keep running. SIGINT (Ctrl-C) or SIGTERM
(or SIGHUP: the terminal closed) stops them all: SIGTERM to each child, SIGKILL to any still
running after the grace period; a second Ctrl-C kills at once.

    python -m tools.dev [--services orders,consent]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from services import definition
from shared.topology import SERVICES
from shared.urls import mask_password

SUPERVISOR_NAME = "dev"
STOP_TIMEOUT_SECONDS = 20.0
# A child's partial line longer than this is printed as it is rather than held back.
MAX_LINE_BYTES = 64 * 1024
# How long output still held in a dead child's pipe (by a grandchild, say) is waited for.
DRAIN_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ChildSpec:
    """One supervised child: the name its output is prefixed with, its command, its environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None  # None: this process's environment


@dataclass(frozen=True)
class Backoff:
    """Restart delays: initial, doubled after each quick failure, capped; reset by a long run."""

    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures + 1`-th exit in a row of quick exits."""
        return min(self.cap, self.initial * 2.0 ** min(failures, 64))


class Supervisor:
    """Runs children until told to stop, restarting any that exits meanwhile."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        backoff: Backoff | None = None,
        stop_timeout: float = STOP_TIMEOUT_SECONDS,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._children = list(children)
        self._backoff = backoff or Backoff()
        self._stop_timeout = stop_timeout
        self._out = out if out is not None else sys.stdout
        self._clock = clock
        self._width = max(len(name) for name in [SUPERVISOR_NAME, *self.names])
        self._stopping = asyncio.Event()
        self._kill_now = asyncio.Event()

    @property
    def names(self) -> list[str]:
        return [child.name for child in self._children]

    def say(self, message: str) -> None:
        """A line of the supervisor's own, prefixed like the children's."""
        self._emit(SUPERVISOR_NAME, message)

    def request_stop(self) -> None:
        """Stop every child; asked again while stopping, kill what is still running."""
        if not self._stopping.is_set():
            self.say(f"stopping (up to {self._stop_timeout:g} s; again to kill at once)")
            self._stopping.set()
        elif not self._kill_now.is_set():
            self.say("killing what is still running")
            self._kill_now.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        """Supervise until `request_stop` (SIGINT, SIGTERM or SIGHUP, if handled); exit 0."""
        loop = asyncio.get_running_loop()
        # The children run in sessions of their own, so a closed terminal's SIGHUP reaches
        # only this process: it too stops them rather than leaving them behind.
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if handle_signals else ()
        for signum in signals:
            loop.add_signal_handler(signum, self.request_stop)
        try:
            async with asyncio.TaskGroup() as group:
                for child in self._children:
                    group.create_task(self._supervise(child), name=f"supervise-{child.name}")
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)
        return 0

    async def _supervise(self, child: ChildSpec) -> None:
        failures = 0
        while not self._stopping.is_set():
            started = self._clock()
            ended = await self._run_once(child)
            if ended is None:
                return
            if self._clock() - started >= self._backoff.reset_after:
                failures = 0
            delay = self._backoff.delay(failures)
            failures += 1
            self.say(f"{child.name} {ended}; restarting in {delay:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _run_once(self, child: ChildSpec) -> str | None:
        """Run the child once: how it ended on its own, or None if it was stopped."""
        try:
            process = await asyncio.create_subprocess_exec(
                *child.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=None if child.env is None else dict(child.env),
                # Its own session: a terminal's Ctrl-C reaches only the supervisor, which then
                # sends one SIGTERM (a second signal makes some servers quit without draining).
                start_new_session=True,
            )
        except OSError as error:
            return f"could not be started ({error})"
        assert process.stdout is not None
        pump = asyncio.create_task(self._pump(child.name, process.stdout))
        try:
            await _first(process.wait(), self._stopping.wait())
            if not self._stopping.is_set():
                return f"exited with code {process.returncode}"
            await self._stop(child.name, process)
            return None
        finally:
            if process.returncode is None:  # cancelled: leave nothing behind
                _kill_group(process)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), DRAIN_TIMEOUT_SECONDS)
            pump.cancel()

    async def _stop(self, name: str, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._stop_timeout):
                    await _first(process.wait(), self._kill_now.wait())
            if process.returncode is None:
                if not self._kill_now.is_set():
                    self.say(f"{name} did not stop within {self._stop_timeout:g} s; killing it")
                _kill_group(process)
                await process.wait()
        self.say(f"{name} stopped (exit code {process.returncode})")

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await stream.read(MAX_LINE_BYTES):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) >= MAX_LINE_BYTES:
                lines.append(pending)
                pending = b""
            for line in lines:
                self._emit(name, _decode(line))
        if pending:
            self._emit(name, _decode(pending))

    def _emit(self, name: str, line: str) -> None:
        self._out.write(f"{name:<{self._width}} | {line}\n")
        self._out.flush()


async def _first(*awaitables: Awaitable[object]) -> None:
    """Wait until the first of the awaitables finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the child and anything it started (its session's process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _decode(line: bytes) -> str:
    return line.decode(errors="replace").rstrip("\r")


def describe_store(environ: Mapping[str, str]) -> str:
    """Where the services keep their data, given the environment they inherit."""
    url = environ.get("MONGODB_URL")
    if url is None:
        data_dir = environ.get("DATA_DIR") or ".data"
        return f"SQLite files under {data_dir.rstrip('/')}/ (one per service)"
    if url.startswith("memory://"):
        return "SQLite in memory (memory://): data is lost when the services stop"
    return f"MongoDB at {mask_password(url)}"


def describe_broker(environ: Mapping[str, str]) -> str:
    from shared.settings import ServiceSettings

    url = environ.get("RABBITMQ_URL") or ServiceSettings.model_fields["rabbitmq_url"].default
    return f"RabbitMQ at {mask_password(str(url))}"


def describe_topology(environ: Mapping[str, str]) -> str:
    """Who declares the exchanges, queues and bindings the services use (shared/runtime.py's
    `finds_topology`: all four share one login here, so none is its own provisioned user)."""
    if environ.get("REGISTER_ENV") == "production":
        return (
            "the services only find the broker's topology: run `rekisteri rabbitmq provision` first"
        )
    return "each service declares its exchanges, queues and bindings at start (development only)"


def service_children(services: Sequence[str], environ: Mapping[str, str]) -> list[ChildSpec]:
    """Each service's process (its definition's command), on its own default health port."""
    children = []
    for service in services:
        defined = definition(service)
        env = {**environ, "HEALTH_PORT": str(defined.default_health_port), "PYTHONUNBUFFERED": "1"}
        children.append(ChildSpec(name=service, argv=defined.command(), env=env))
    return children


def _service_list(value: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
    unknown = [name for name in names if name not in SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {','.join(SERVICES)}, got {value!r}"
        )
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.dev",
        description="Run the services locally, restarting any that dies; Ctrl-C stops them.",
    )
    parser.add_argument(
        "--services",
        type=_service_list,
        default=list(SERVICES),
        metavar="NAMES",
        help=f"comma-separated subset to run (default: {','.join(SERVICES)})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    environ = dict(os.environ)
    children = service_children(args.services, environ)
    supervisor = Supervisor(children)
    supervisor.say(describe_store(environ))
    supervisor.say(describe_broker(environ))
    supervisor.say(describe_topology(environ))
    host = environ.get("HEALTH_HOST") or "127.0.0.1"
    for child in children:
        assert child.env is not None
        supervisor.say(f"{child.name}: http://{host}:{child.env['HEALTH_PORT']}/ready")
    return asyncio.run(supervisor.run())


if __name__ == "__main__":
    raise SystemExit(main())

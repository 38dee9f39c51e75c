"""`shared.runtime.every`: the services' periodic work (the erasure service's check of silent
participants, the retention sweep), started and stopped by `run_startup_hooks`."""

from __future__ import annotations

import asyncio

import pytest

from shared.runtime import Stop, every, run_startup_hooks


class Runs:
    """Work that records when it ran, fails on the runs it is told to, and can be awaited."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.times: list[float] = []
        self._failing = failing
        self._ran = asyncio.Condition()

    async def __call__(self) -> None:
        async with self._ran:
            self.times.append(asyncio.get_running_loop().time())
            self._ran.notify_all()
        if len(self.times) in self._failing:
            raise RuntimeError("this run fails")

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5), self._ran:
            await self._ran.wait_for(lambda: len(self.times) >= count)


async def test_work_asked_to_run_at_start_runs_at_once() -> None:
    runs = Runs()
    stop = await every(3600, runs, at_start=True)()
    await runs.until(1)  # not an hour later
    await stop()


async def test_work_runs_again_after_each_interval() -> None:
    runs = Runs()
    stop = await every(0.05, runs, at_start=True)()
    await runs.until(3)
    await stop()
    # asyncio may wake a timer up to its clock's resolution early: a millisecond covers it.
    gaps = [later - earlier for earlier, later in zip(runs.times, runs.times[1:], strict=False)]
    assert all(gap >= 0.049 for gap in gaps)


async def test_work_runs_first_after_one_interval_otherwise() -> None:
    runs = Runs()
    started = asyncio.get_running_loop().time()
    stop = await every(0.05, runs)()
    await runs.until(1)
    await stop()
    assert runs.times[0] - started >= 0.049


async def test_a_failed_run_is_logged_and_the_work_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = Runs(failing=frozenset({1}))
    stop = await every(0.01, runs, at_start=True)()
    await runs.until(2)
    await stop()
    assert "periodic work failed" in caplog.text


async def test_stopping_ends_the_work() -> None:
    before = asyncio.all_tasks()
    runs = Runs()
    stop = await every(0.01, runs, at_start=True)()
    await runs.until(1)
    await stop()
    # Once stopped, its task is gone: nothing is left to run the work.
    assert asyncio.all_tasks() <= before


async def test_a_failing_startup_hook_stops_what_the_earlier_ones_started() -> None:
    before = asyncio.all_tasks()

    async def broken() -> Stop | None:
        raise RuntimeError("cannot start")

    with pytest.raises(RuntimeError, match="cannot start"):
        await run_startup_hooks([every(3600, Runs()), broken])
    assert asyncio.all_tasks() <= before


async def test_stopping_stops_everything_the_hooks_started() -> None:
    before = asyncio.all_tasks()
    first, second = Runs(), Runs()
    stop = await run_startup_hooks([every(0.01, first, at_start=True), every(0.01, second)])
    await second.until(1)
    await stop()
    assert asyncio.all_tasks() <= before

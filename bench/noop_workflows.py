"""The no-op workflows the benches measure the real ones against, in a module of their own.

The workflow sandbox imports a workflow's module afresh for each workflow instance it creates (a new run, a
cache eviction, every history a replay reads). These classes used to live in ``bench.engine_bench``, whose
body (drivers, profiler, tables) the sandbox then ran for each baseline instance: 8 ms of CPU each here, which
the real workflows, in their own small modules, do not pay. A baseline must carry nothing of the bench, so this
module holds only the workflows and what they need.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy


@dataclass
class NoopInput:
    """The shape to replay: per step (intake, then one per action) the engine commands in order."""

    steps: list[list[str]]
    signals: int = 0  # how many signals the child waits for before it completes


@activity.defn(name="bench_noop")
async def noop_activity(n: int) -> int:
    """Do nothing (used both as a local and as a regular activity)."""
    return n


@workflow.defn
class NoopChildWorkflow:
    """Stand-in for ``AgencyTaskWorkflow``: waits for its signals, then completes."""

    def __init__(self) -> None:
        self._signals = 0

    @workflow.run
    async def run(self, expected: int) -> int:
        """Complete once ``expected`` signals have arrived."""
        await workflow.wait_condition(lambda: self._signals >= expected)
        return self._signals

    @workflow.signal
    def poke(self) -> None:
        """Count a signal (the real child's ``set_deadline`` or ``finish``)."""
        self._signals += 1


@workflow.defn
class NoopCaseWorkflow:
    """Stand-in for ``ComplaintWorkflow``: the same commands per step, driven by the same updates."""

    @workflow.init
    def __init__(self, inp: NoopInput) -> None:
        self._inp = inp
        self._done = 0
        self._child: ChildWorkflowHandle[Any, Any] | None = None
        self._children = 0
        self._lock = asyncio.Lock()

    @workflow.run
    async def run(self, inp: NoopInput) -> int:
        """Perform the intake step, then wait until every action's update has run."""
        async with self._lock:
            await self._perform(inp.steps[0])
            self._done = 1
        await workflow.wait_condition(lambda: self._done >= len(inp.steps))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done

    @workflow.update
    async def receipt(self) -> int:
        """Return once intake is done (the real ``receipt``)."""
        await workflow.wait_condition(lambda: self._done >= 1)
        return self._done

    @workflow.update
    async def act(self, event: str) -> int:
        """Perform the next step's commands (the real ``act``, without validator or process table)."""
        async with self._lock:
            if self._done >= len(self._inp.steps):
                raise ApplicationError(f"no step left for {event}", non_retryable=True)
            await self._perform(self._inp.steps[self._done])
            self._done += 1
        return self._done

    async def _perform(self, commands: list[str]) -> None:
        """Issue one step's commands in the order the real case issued them."""
        for n, kind in enumerate(commands):
            if kind == "local":
                await workflow.execute_local_activity(noop_activity, n, start_to_close_timeout=timedelta(seconds=10))
            elif kind == "activity":
                await workflow.execute_activity(noop_activity, n, start_to_close_timeout=timedelta(seconds=30))
            elif kind == "child":
                self._children += 1
                self._child = await workflow.start_child_workflow(
                    NoopChildWorkflow.run,
                    self._inp.signals,
                    id=f"{workflow.info().workflow_id}-child-{self._children}",
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                )
            elif kind == "signal" and self._child is not None:
                await self._child.signal(NoopChildWorkflow.poke)

"""Golden histories replay on today's code; an incompatible change without a patch is caught.

Cases live for more than a year while the code under them changes. Every history recorded under
``tests/workflows/histories/`` (by every version of the workflow that ever ran) must replay deterministically
on the current code; a change of behaviour goes behind ``workflow.patched`` and adds a new recording.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from config.settings import Settings
from config.temporal import data_converter
from tests.workflows.histories import recorded
from worker import WORKFLOWS, build_replayer
from workflows.complaint import ComplaintWorkflow

HISTORIES = recorded()


def _history(path: Path) -> WorkflowHistory:
    workflow_id = path.stem
    return WorkflowHistory.from_json(workflow_id, path.read_text())


def test_there_are_golden_histories_for_every_version() -> None:
    versions = {p.parent.name for p in HISTORIES}
    assert "v1" in versions, "the first version's recordings are missing"
    assert sum(1 for p in HISTORIES if p.stem.startswith("complaint-") and "-task-" not in p.stem) >= 12


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_golden_history_replays_on_todays_code(path: Path, settings: Settings) -> None:
    result = await build_replayer(settings).replay_workflow(_history(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name} no longer replays: {result.replay_failure}"


@pytest.fixture
def unpatched_change(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A change of behaviour shipped without ``workflow.patched``: every transition first sleeps a second."""
    original = ComplaintWorkflow._record

    async def record_with_a_new_timer(self: ComplaintWorkflow, **kwargs: object) -> None:
        await workflow.sleep(timedelta(seconds=1))
        await original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ComplaintWorkflow, "_record", record_with_a_new_timer)
    yield


async def test_an_unpatched_change_of_behaviour_fails_the_replay(settings: Settings, unpatched_change: None) -> None:
    # Unsandboxed, so the monkeypatched class is the one that runs; the sandbox would import a fresh copy.
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=UnsandboxedWorkflowRunner()
    )
    case = next(p for p in HISTORIES if p.stem.startswith("complaint-") and "-task-" not in p.stem)
    result = await replayer.replay_workflow(_history(case), raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "nondeterminism" in type(result.replay_failure).__name__.lower() or "Nondeterminism" in str(
        result.replay_failure
    )


async def test_the_same_replayer_without_the_change_succeeds(settings: Settings) -> None:
    """The control for the test above: unsandboxed replay of the same history passes when nothing changed."""
    replayer = Replayer(
        workflows=WORKFLOWS, data_converter=data_converter(settings), workflow_runner=UnsandboxedWorkflowRunner()
    )
    case = next(p for p in HISTORIES if p.stem.startswith("complaint-") and "-task-" not in p.stem)
    result = await replayer.replay_workflow(_history(case), raise_on_replay_failure=False)
    assert result.replay_failure is None

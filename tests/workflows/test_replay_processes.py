"""Replay in worker processes (``rongtuk replay --all --jobs``, ``rongtuk db rebuild --jobs``) gives what a
replay in this process gives: the same verdicts, the same transitions."""

from __future__ import annotations

from temporalio.client import WorkflowHistory

from activities.rebuild import HistoryReader, ReplayProcesses, replay_cases
from config.settings import Settings
from tests.workflows.histories import recorded
from worker import WORKFLOWS

CASES = [p for p in recorded() if p.stem.startswith("complaint-") and "-task-" not in p.stem][:6]


def _history(name: str, text: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(name, text)


async def test_processes_replay_and_capture_what_this_process_does(settings: Settings) -> None:
    cases = [(p.stem.removeprefix("complaint-"), [_history(p.stem, p.read_text())]) for p in CASES]
    processes = ReplayProcesses(settings, 2)
    try:
        checked = await processes.check([h for _, runs in cases for h in runs])
        in_processes = await processes.transitions(cases)
    finally:
        processes.close()
    assert [(workflow_id, error) for workflow_id, _, error in checked] == [(p.stem, None) for p in CASES]

    class _Client:
        from config.temporal import data_converter as _dc

        data_converter = _dc(settings)

    here = await replay_cases(HistoryReader(_Client(), WORKFLOWS).replayer(), cases)  # type: ignore[arg-type]
    assert [case for case, _ in in_processes] == [case for case, _ in cases]
    assert all(records for _, records in here)
    assert in_processes == here

"""The rebuild reads a case's transitions from the answers its writes left in the history, exactly what a
replay of the history captures, and replays whatever history does not hold them all."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from activities.projection import PROJECTION_REFUSED
from activities.rebuild import LOCAL_ACTIVITY_MARKER, HistoryReader, records_in_history, replay_cases
from config.settings import Settings
from config.temporal import data_converter
from tests.workflows.histories import recorded
from worker import WORKFLOWS

COMPLAINTS = [p for p in recorded() if p.stem.startswith("complaint-") and "-task-" not in p.stem]
# The first version whose write answers with its record.
ANSWERING = "v7"


def _version(folder: str) -> int:
    return int(folder.removeprefix("v"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


class _Client:
    def __init__(self, settings: Settings) -> None:
        self.data_converter = data_converter(settings)


def _replayer(settings: Settings) -> HistoryReader:
    return HistoryReader(_Client(settings), WORKFLOWS)  # type: ignore[arg-type]


def _writes(history: WorkflowHistory) -> list[HistoryEvent]:
    """The history's record_transition markers."""
    return [
        e
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        and b'"record_transition"' in e.marker_recorded_event_attributes.details["data"].payloads[0].data
    ]


def test_todays_recordings_answer_with_their_records() -> None:
    assert sum(p.parent.name == ANSWERING for p in COMPLAINTS) >= 12


async def test_every_recorded_case_reads_what_its_replay_captures(settings: Settings) -> None:
    reader = _replayer(settings)
    cases = [(p.stem, [_history(p)]) for p in COMPLAINTS]
    answering = [c for p, c in zip(COMPLAINTS, cases, strict=True) if _version(p.parent.name) >= _version(ANSWERING)]
    # Each history is replayed once: the answering ones here, to compare with what is read; the older ones below.
    replayed = dict(await replay_cases(reader.replayer(), answering))
    read_count = 0
    for path, (case_id, histories) in zip(COMPLAINTS, cases, strict=True):
        read = await records_in_history(reader.client.data_converter, histories)
        if _version(path.parent.name) < _version(ANSWERING):
            # Their writes answered nothing (v2-v6) or were two activities (v1): they must be replayed.
            assert read is None, path
            continue
        assert read is not None, f"{path.parent.name}/{path.name}: the records should be in the history"
        assert read == replayed[case_id], f"{path.parent.name}/{path.name}: read and replayed records differ"
        assert [r.case.seq for r in read] == list(range(1, len(read) + 1))
        read_count += 1
    assert read_count >= 12
    # With the converter, replay_cases reads what it can and replays the rest: every case answers, in order, the
    # answering ones with what their replay captured.
    mixed = await replay_cases(reader.replayer(), cases, reader.client.data_converter)
    assert [case_id for case_id, _ in mixed] == [case_id for case_id, _ in cases]
    for path, (case_id, records) in zip(COMPLAINTS, mixed, strict=True):
        assert records, f"{path.parent.name}/{path.name}: neither read nor replayed"
        assert [r.case.seq for r in records] == list(range(1, len(records) + 1)), path
        if case_id in replayed:
            assert records == replayed[case_id], path


def _longest() -> WorkflowHistory:
    today = [p for p in COMPLAINTS if p.parent.name == ANSWERING]
    return max((_history(p) for p in today), key=lambda h: len(_writes(h)))


async def test_a_history_missing_a_write_is_replayed(settings: Settings) -> None:
    history = _longest()
    assert len(_writes(history)) >= 5
    gone = _writes(history)[2]
    holed = WorkflowHistory(history.workflow_id, [e for e in history.events if e is not gone])
    converter = data_converter(settings)
    assert await records_in_history(converter, [history]) is not None
    assert await records_in_history(converter, [holed]) is None  # transition 3 is missing
    # Its last write alone: the records do not start at transition 1.
    *earlier, last = _writes(history)
    tail = WorkflowHistory(history.workflow_id, [e for e in history.events if e not in earlier])
    assert last in tail.events
    assert await records_in_history(converter, [tail]) is None


@pytest.mark.parametrize("damage", ["refused", "old_answer"])
async def test_a_write_without_its_record_sends_the_case_to_replay(settings: Settings, damage: str) -> None:
    history = _longest()
    events = [type(e)() for e in history.events]
    for source, target in zip(history.events, events, strict=True):
        target.CopyFrom(source)
    damaged = WorkflowHistory(history.workflow_id, events)
    marker = _writes(damaged)[-1].marker_recorded_event_attributes
    converter = data_converter(settings)
    if damage == "refused":  # the read model refused it: the marker holds the failure, the case went on
        marker.failure.message = "the read model refused it"
        marker.failure.application_failure_info.type = PROJECTION_REFUSED
        marker.failure.application_failure_info.non_retryable = True
        del marker.details["result"]
    else:  # what a write answered before it answered with its record
        marker.details["result"].payloads[0].CopyFrom((await converter.encode([None]))[0])
    assert await records_in_history(converter, [damaged]) is None
    replayed = await replay_cases(_replayer(settings).replayer(), [("case", [damaged])], converter)
    assert replayed[0][1] == await records_in_history(converter, [history])

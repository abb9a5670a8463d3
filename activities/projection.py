"""Read-model writes: all of a transition or none, idempotent under retries, replays and rebuilds.

``record_transition`` writes everything a transition changes (the case's snapshot, its hash-chained timeline
row, its agency tasks and the notification outbox rows) at once: on PostgreSQL one statement after reading the
predecessor's hash (``write_transition_at_once``), else one transaction (``write_transition``). Keyed by case
and sequence number, a retry or a rebuild writes nothing twice and an older write never undoes a newer one.

When it meets a case it does not know, or one whose rows are behind (a lost or restored database), it first
re-projects the whole case from its Temporal history. Errors that can never succeed (a constraint, bad data)
are non-retryable: the case is marked stuck on the supervisors' board and in /metrics, never silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, delete, func, insert, literal_column, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ClauseElement
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config.reference import region_of
from domain.complaint import Complaint
from store import models
from store.board import case_copies
from store.chain import event_hash
from store.db import Database, is_database_unavailable
from store.models import category_group_of
from workflows.models import AgencyTask, CaseEvent, CaseState, ProjectionRequest, TransitionRecord, workflow_id_for
from workflows.process import ACTIVE_TASK, OPEN_TASK, Audience

log = structlog.get_logger(__name__)

PROJECTION_REFUSED = "ProjectionRefused"
# The write's activity name: the workflow calls it by name, to take its answer as the raw payload it is.
RECORD_TRANSITION = "record_transition"
# Errors a retry cannot cure: the data itself is refused by the database.
PERMANENT_ERRORS = (IntegrityError, DataError, ProgrammingError, ValueError, TypeError, OverflowError)


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying this write can never succeed (bad data), as opposed to the database being away."""
    if is_database_unavailable(exc):
        return False
    # Some drivers (asyncpg) raise a generic error for values out of range: permanent, the connection being fine.
    return isinstance(exc, (DBAPIError, *PERMANENT_ERRORS))


# Re-projection source: every transition of a case as its Temporal history records it (activities/rebuild.py).
HistorySource = Callable[[str], Awaitable[list[TransitionRecord]]]


class CaseBehind(Exception):
    """The read model lacks the transition before this one: the case must be re-projected first."""


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind else "sqlite"


def _insert_of(dialect: str) -> Any:
    """The ``insert`` with ``ON CONFLICT`` clauses of a backend."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _dialect_insert(session: AsyncSession) -> Any:
    """The ``insert`` with ``ON CONFLICT`` clauses for whichever backend the session is on."""
    return _insert_of(_dialect(session))


def _insert(session: AsyncSession, table: Any, rows: dict[str, Any] | list[dict[str, Any]]) -> Any:
    return _dialect_insert(session)(table).values(rows)


def insert_ignoring_duplicates(
    session: AsyncSession, table: Any, rows: dict[str, Any] | list[dict[str, Any]], keys: list[str]
) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for whichever backend the session is on."""
    return _insert(session, table, rows).on_conflict_do_nothing(index_elements=keys)


def case_snapshot(case: CaseState) -> dict[str, Any]:
    """The case row's columns that follow the workflow's state."""
    current = case.current_deadline()
    return {
        "status": case.status.value,
        "category": case.category,
        "category_group": category_group_of(case.category),
        "agencies": list(dict.fromkeys(t.agency for t in case.tasks if t.status in ACTIVE_TASK)),
        "handler_id": case.handler,
        "outcome": case.outcome,
        "expected_by": case.expected_by,
        "closed_at": case.closed_at,
        "last_seq": case.seq,
        "due_at": current.due_at if current else None,
        "due_rule": current.rule.value if current else None,
        "breached_at": case.breached_at,
        "escalation_level": case.escalation_level,
        "stage": case.stage,
        "closure_reason": case.closure_reason,
        "duplicate_of": case.duplicate_of,
        "root_cause": case.root_cause,
        "action_taken": case.action_taken,
        "stage1_closed_at": case.stage1_closed_at,
        "stage2_started_at": case.stage2_started_at,
        "stage2_closed_at": case.stage2_closed_at,
        "rating": case.rating,
        "rating_comment": case.rating_comment,
        "rejections": case.rejections,
        "review_deadline": case.review_deadline,
        "late_review_allowed": case.late_review_allowed,
        "kind": case.kind,
        "priority": case.priority,
        "centre": case.centre,
        "sla_class": case.sla_class,
    }


def intake_row(case: CaseState, complaint: Complaint, at: datetime) -> dict[str, Any]:
    """The case row as intake creates it: the complaint's fields and the first snapshot."""
    person, place = complaint.complainant, complaint.location
    return {
        "case_id": case.case_id,
        "tracking_code": case.tracking_code,
        "workflow_id": workflow_id_for(case.case_id),
        "channel": case.channel,
        "subject": complaint.subject,
        "description": complaint.description,
        "complainant_name": person.name,
        "complainant_citizen_id": person.citizen_id,
        "complainant_phone": person.phone,
        "complainant_email": person.email,
        "complainant_line_user_id": person.line_user_id,
        "preferred_channels": [c.value for c in person.preferred_channels] or ["web"],
        "confidential": person.confidential,
        "province": place.province if place else None,
        "region": region_of(place.province_code if place else None),
        "district": place.district if place else None,
        "subdistrict": place.subdistrict if place else None,
        "address": place.address if place else None,
        "latitude": place.latitude if place else None,
        "longitude": place.longitude if place else None,
        "attachments": [a.model_dump(mode="json") for a in complaint.attachments],
        "received_at": case.received_at,
        "updated_at": at,
        **case_snapshot(case),
    }


def event_row(event: CaseEvent) -> dict[str, Any]:
    """The timeline row of a transition (without its hashes)."""
    return {
        "case_id": event.case_id,
        "seq": event.seq,
        "event": event.event,
        "from_state": event.from_state.value if event.from_state else None,
        "to_state": event.to_state.value,
        "actor_id": event.actor.id,
        "actor_role": event.actor.role.value,
        "actor_agency": event.actor.agency,
        "at": event.at,
        "public": event.public,
        "data": event.data,
    }


def chained(event: CaseEvent, prev: str | None) -> dict[str, Any]:
    """The timeline row of a transition, chained to its predecessor's hash (``prev``)."""
    timeline = event_row(event)
    timeline["prev_hash"] = prev
    timeline["hash"] = event_hash(prev, timeline)
    return timeline


def task_row(case_id: str, task: AgencyTask, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """An agency task's row, with the case's board columns as the case row holds them with ``snapshot``
    (store/board.py)."""
    return {
        "case_id": case_id,
        "agency": task.agency,
        "status": task.status.value,
        "assigned_at": task.assigned_at,
        "accepted_at": task.accepted_at,
        "responded_at": task.responded_at,
        "outcome": task.outcome,
        "due_at": task.deadline.due_at if task.deadline and task.status in OPEN_TASK else None,
        "breached_at": task.breached_at,
        "escalation_level": task.escalation_level,
        "reason": task.reason,
        "extension_pending": task.extension_pending,
        "extended_by": task.extended_by,
        "stage": task.stage,
        "questions": task.questions,
        "question_asked_at": task.asked_at,
        **case_copies(case_id, snapshot),
    }


def recipients(audience: Audience, channels: list[str], agencies: list[str]) -> list[tuple[str, str]]:
    """(channel, recipient) pairs for one audience: never an address, the gateway resolves it when sending."""
    if audience is Audience.COMPLAINANT:
        return [(channel, "complainant") for channel in channels]
    if audience is Audience.AGENCY:
        return [("web", agency) for agency in agencies]
    if audience is Audience.AGENCY_HEAD:
        return [("web", f"{agency}:head") for agency in agencies]
    return [("web", "supervisors")]


def outbox_rows(
    *,
    case_id: str,
    seq: int,
    event: str,
    state: str,
    audiences: list[Audience],
    agencies: list[str],
    channels: list[str],
    expected_by: datetime | None,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """One outbox row per recipient of a transition. ``at``, when the transition happened, is the row's
    ``created_at`` (default: now): news written long after its event (a rebuild, a case re-projected after a
    restore) is then as old as the event, and the dispatcher keeps what is older than
    ``RONGTUK_DELIVERY_EXPIRE_HOURS`` in the inbox instead of sending it again, late."""
    created = at or datetime.now(UTC)
    return [
        {
            "case_id": case_id,
            "seq": seq,
            "event": event,
            "state": state,
            "audience": audience.value,
            "channel": channel,
            "recipient": recipient,
            "expected_by": expected_by,
            "created_at": created,
            "status": "pending",
        }
        for audience in audiences
        for channel, recipient in recipients(audience, channels, agencies)
    ]


async def queue_notifications(
    session: AsyncSession,
    *,
    case_id: str,
    seq: int,
    event: str,
    state: str,
    audiences: list[Audience],
    agencies: list[str],
    expected_by: datetime | None,
    channels: list[str] | None = None,
    at: datetime | None = None,
) -> int:
    """Write a transition's outbox rows once (retries insert nothing); ``channels`` are the complainant's
    preferred ones, read from the case when not given. Returns how many rows the transition has."""
    if channels is None:
        stored = await session.execute(select(models.Case.preferred_channels).where(models.Case.case_id == case_id))
        channels = stored.scalar_one_or_none() or ["web"]
    rows = outbox_rows(
        case_id=case_id,
        seq=seq,
        event=event,
        state=state,
        audiences=audiences,
        agencies=agencies,
        channels=channels,
        expected_by=expected_by,
        at=at,
    )
    if rows:
        # The rows as the parameters of one statement (executemany), not a VALUES list built into it: SQLAlchemy
        # compiles a multi-row VALUES again for every execution (5 ms of CPU a transition here), this one once.
        notifications = cast(Table, models.Notification.__table__)
        statement = _dialect_insert(session)(notifications).on_conflict_do_nothing(index_elements=_OUTBOX_KEY)
        await session.execute(statement, rows)
    return len(rows)


async def write_snapshot(
    session: AsyncSession,
    event: CaseEvent,
    case: CaseState,
    complaint: Complaint | None,
    *,
    allow_gap: bool = False,
) -> None:
    """The case row, its timeline row (hash-chained) and its tasks, for one transition."""
    if complaint is not None:
        row = intake_row(case, complaint, event.at)
        # A bare row (last_seq 0, left by a refused write) is completed; any other is already the intake's.
        values = {k: v for k, v in row.items() if k != "case_id"} | {"stuck_at": None, "stuck_reason": None}
        await session.execute(
            _insert(session, models.Case, row).on_conflict_do_update(
                index_elements=["case_id"], set_=values, where=models.Case.last_seq == 0
            )
        )
    # ``last_seq < seq`` makes the write idempotent and keeps an older retry from undoing a newer one.
    snapshot = case_snapshot(case)
    where = {"w_case_id": case.case_id, "w_seq": case.seq}
    moved = await session.execute(_move_case(tuple(snapshot)), _move_params(event, case, snapshot))
    # The tasks likewise: an older transition come late leaves them as the newer one wrote them (tasks are
    # never dropped from a case, so the newer write has every task the older one has).
    behind = False
    if not getattr(moved, "rowcount", 0):
        stored = await session.scalar(select(models.Case.last_seq).where(models.Case.case_id == case.case_id))
        behind = stored is not None and stored > case.seq
    prev = (await session.execute(_PREV_HASH, {"case_id": event.case_id, "seq": event.seq - 1})).scalar_one_or_none()
    if prev is None and event.seq > 1 and complaint is None and not allow_gap:
        raise CaseBehind(event.case_id)
    timeline = chained(event, prev)
    inserted = await session.execute(_add_event(_dialect(session), tuple(timeline)), _named("e", timeline))
    if not getattr(inserted, "rowcount", 1) and await _supersede(session, timeline, snapshot):
        behind = False
    for task in [] if behind else case.tasks:
        row = _values(task_row(case.case_id, task, snapshot))
        await session.execute(_upsert_task(_dialect(session), tuple(row), tuple(snapshot)), where | _named("t", row))


# The general path's statements, built once and given their values as parameters: SQLAlchemy caches the compiled
# form of a statement it sees again, where a statement built around its values (``.values(**row)``) costs it a
# new construction and cache key every time (most of a transition's CPU on SQLite).


def _values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's plain values: the copies a task reads from its case row (``case_copies``) are in the statement."""
    return {k: v for k, v in row.items() if not isinstance(v, ClauseElement)}


def _named(prefix: str, row: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{k}": v for k, v in row.items()}


def _move_params(event: CaseEvent, case: CaseState, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """``_move_case``'s parameters."""
    return {"w_case_id": case.case_id, "w_seq": case.seq, "w_updated_at": event.at} | _named("s", snapshot)


@lru_cache(maxsize=8)
def _move_case(snapshot_columns: tuple[str, ...]) -> Any:
    """``UPDATE cases SET <the snapshot> WHERE case_id = :w_case_id AND last_seq < :w_seq``."""
    cases = cast(Table, models.Case.__table__)
    # No parameter is named after a column: SQLAlchemy would take it for a value of that column to SET.
    return (
        update(cases)
        .where(
            cases.c.case_id == bindparam("w_case_id", type_=cases.c.case_id.type),
            cases.c.last_seq < bindparam("w_seq", type_=cases.c.last_seq.type),
        )
        .values(
            {"updated_at": bindparam("w_updated_at", type_=cases.c.updated_at.type), "stuck_at": null()}
            | {"stuck_reason": null()}
            | {name: bindparam(f"s_{name}", type_=cases.c[name].type) for name in snapshot_columns}
        )
    )


@lru_cache(maxsize=8)
def _add_event(dialect: str, timeline_columns: tuple[str, ...]) -> Any:
    """``INSERT INTO case_events ... ON CONFLICT (case_id, seq) DO NOTHING``, the row as parameters ``e_<column>``."""
    events = cast(Table, models.CaseEvent.__table__)
    values = {name: bindparam(f"e_{name}", type_=events.c[name].type) for name in timeline_columns}
    return _insert_of(dialect)(events).values(values).on_conflict_do_nothing(index_elements=["case_id", "seq"])


def _task_copies(snapshot_columns: tuple[str, ...], case_id: Any) -> dict[str, Any]:
    """A task row's copies of the case columns the snapshot lacks, read from the case row as ``case_copies``
    reads them."""
    cases = cast(Table, models.Case.__table__)
    return {
        task: select(cases.c[case]).where(cases.c.case_id == case_id).scalar_subquery()
        for task, case in models.BOARD_COPIES
        if task != "case_id" and case not in snapshot_columns
    }


@lru_cache(maxsize=16)
def _upsert_task(dialect: str, task_columns: tuple[str, ...], snapshot_columns: tuple[str, ...]) -> Any:
    """``INSERT INTO agency_tasks ... ON CONFLICT (case_id, agency) DO UPDATE`` of every other column, the row
    as parameters ``t_<column>`` and the copies from the case row ``:w_case_id``."""
    tasks = cast(Table, models.AgencyTask.__table__)
    values = {name: bindparam(f"t_{name}", type_=tasks.c[name].type) for name in task_columns}
    copies = _task_copies(snapshot_columns, bindparam("w_case_id"))
    rows = _insert_of(dialect)(tasks).values(values | copies)
    return rows.on_conflict_do_update(index_elements=_TASK_KEY, set_=_all_but_key(rows, [*values, *copies]))


_TASK_KEY = ["case_id", "agency"]
# The outbox row's key: a transition's rows are written once (``uq_notifications_key``).
_OUTBOX_KEY = ["case_id", "seq", "audience", "channel", "recipient"]


def _all_but_key(rows: Any, columns: Sequence[str]) -> dict[str, Any]:
    """An upsert of tasks' ``SET``: every column it inserts, but the key, from the row it meant to insert."""
    return {name: rows.excluded[name] for name in columns if name not in _TASK_KEY}


async def write_transition_at_once(db: Database, rec: TransitionRecord) -> bool:
    """On PostgreSQL, ``write_transition`` in two round trips instead of about eight: the predecessor's hash,
    then one statement (data-modifying CTEs) with the case row, the timeline row, the tasks and the outbox
    rows, run outside an explicit transaction (a statement is atomic: all of them or none). The same rows, by
    the same rules:
    - the case row moves only if it is behind this transition (``last_seq < seq``);
    - the tasks are written unless the case row was already past this transition before the statement (every
      statement of it sees the rows as they were before it). The newer write then has every task this one
      has, so the insert meets each as a conflict, and the ``WHERE`` of its update keeps them as they are;
    - the outbox rows are inserted once.
    Returns False where the general path must write it, nothing written: SQLite; a filing (its case row is
    inserted or completed first); a record without the complainant's channels. Also False once written if
    the timeline row was there already: a retry (the general path then finds everything written) or another
    transition at the same number, which the general path supersedes (``_supersede``). Raises ``CaseBehind``
    as the general path does."""
    if db.is_sqlite or rec.complaint is not None:
        return False
    channels = record_channels(rec)
    if channels is None:
        return False
    event, case = rec.event, rec.case
    snapshot = case_snapshot(case)
    # One row per agency, the last of its tasks (a case sent back to an agency for stage 2 holds both), as
    # the general path's upserts one after another leave it: one statement may not upsert a row twice.
    tasks = list({task.agency: task_row(case.case_id, task, snapshot) for task in case.tasks}.values())
    outbox = outbox_rows(**transition_outbox(rec), channels=channels)
    async with db.autocommit.begin() as conn:
        prev = (await conn.execute(_PREV_HASH, {"case_id": event.case_id, "seq": event.seq - 1})).scalar_one_or_none()
        if prev is None and event.seq > 1:
            raise CaseBehind(event.case_id)
        timeline = chained(event, prev)
        # The rows as one array per column (``unnest`` makes them rows again): one statement for any number.
        # The copies read from the case row (``case_copies``) are subqueries the statement holds itself.
        task_columns = tuple(_values(tasks[0])) if tasks else ()
        outbox_columns = tuple(outbox[0]) if outbox else ()
        params = _move_params(event, case, snapshot) | _named("e", timeline)
        params |= {f"t_{name}": [row[name] for row in tasks] for name in task_columns}
        params |= {f"n_{name}": [row[name] for row in outbox] for name in outbox_columns}
        statement = _transition_statement(tuple(snapshot), tuple(timeline), task_columns, outbox_columns)
        added = (await conn.execute(statement, params)).scalar_one()
    return bool(added)


_PREV_HASH = select(models.CaseEvent.hash).where(
    models.CaseEvent.case_id == bindparam("case_id"), models.CaseEvent.seq == bindparam("seq")
)


@lru_cache(maxsize=64)
def _transition_statement(
    snapshot_columns: tuple[str, ...],
    timeline_columns: tuple[str, ...],
    task_columns: tuple[str, ...],
    outbox_columns: tuple[str, ...],
) -> Any:
    """``WITH moved AS (UPDATE cases), added AS (INSERT timeline row ON CONFLICT DO NOTHING RETURNING),
    tasks AS (INSERT tasks ON CONFLICT DO UPDATE WHERE the case was not past this transition), outbox AS
    (INSERT outbox rows ON CONFLICT DO NOTHING) SELECT count(*) FROM added``, the tasks without ``tasks`` when
    there are none, without ``outbox`` likewise. The rows of tasks and of the outbox come from one array per
    column (``unnest``), not a VALUES list: SQLAlchemy compiles a multi-row VALUES again for every execution
    (5 ms here), where this shape is built once and its compiled form cached like any other statement's."""
    cases = cast(Table, models.Case.__table__)
    events = cast(Table, models.CaseEvent.__table__)
    task_table = cast(Table, models.AgencyTask.__table__)
    notes = cast(Table, models.Notification.__table__)
    case_id = bindparam("w_case_id", type_=cases.c.case_id.type)
    seq = bindparam("w_seq", type_=cases.c.last_seq.type)
    moved = _move_case(snapshot_columns).returning(cases.c.case_id).cte("moved")
    added = _add_event("postgresql", timeline_columns).returning(events.c.seq).cte("added")
    writes = [moved]
    if task_columns:
        # The copies from the case row: columns this statement does not change, so the row as it was has them right.
        copies = _task_copies(snapshot_columns, case_id)
        rows = _unnest(task_table, "t", task_columns)
        tasks = postgresql.insert(task_table).from_select(
            [*task_columns, *copies], select(*(rows.c[name] for name in task_columns), *copies.values())
        )
        stored = select(cases.c.last_seq).where(cases.c.case_id == case_id).scalar_subquery()
        writes.append(
            tasks.on_conflict_do_update(
                index_elements=_TASK_KEY,
                set_=_all_but_key(tasks, [*task_columns, *copies]),
                where=func.coalesce(stored, 0) <= seq,
            ).cte("tasks")
        )
    if outbox_columns:
        rows = _unnest(notes, "n", outbox_columns)
        writes.append(
            postgresql.insert(notes)
            # ``attempts`` too: a statement inside a CTE gets no column default filled in.
            .from_select([*outbox_columns, "attempts"], select(*rows.c, literal_column("0")))
            .on_conflict_do_nothing(index_elements=_OUTBOX_KEY)
            .cte("outbox")
        )
    return select(select(func.count()).select_from(added).scalar_subquery()).add_cte(*writes)


def _unnest(table: Table, prefix: str, columns: Sequence[str]) -> Any:
    """``SELECT unnest(:p_a) AS a, unnest(:p_b) AS b, ...``: rows from one array parameter per column, each
    of the column's type (set-returning functions in one select list run in step)."""
    return select(
        *(
            func.unnest(bindparam(f"{prefix}_{name}", type_=ARRAY(table.c[name].type)), type_=table.c[name].type).label(
                name
            )
            for name in columns
        )
    ).subquery(f"{prefix}_rows")


async def write_transition(session: AsyncSession, rec: TransitionRecord, *, allow_gap: bool = False) -> None:
    """Everything one transition writes: snapshot, timeline, tasks and outbox (``CaseBehind`` if the
    transition before it is missing, unless ``allow_gap``)."""
    await write_snapshot(session, rec.event, rec.case, rec.complaint, allow_gap=allow_gap)
    await queue_notifications(session, **transition_outbox(rec), channels=record_channels(rec))


def record_channels(rec: TransitionRecord) -> list[str] | None:
    """The complainant's preferred channels as the transition carries them (None: read them from the case)."""
    if rec.channels is None and rec.complaint is not None:
        return [c.value for c in rec.complaint.complainant.preferred_channels] or ["web"]
    return rec.channels


def transition_outbox(rec: TransitionRecord) -> dict[str, Any]:
    """What a transition's outbox rows are made of (``queue_notifications``, ``outbox_rows``), but the channels."""
    event, case = rec.event, rec.case
    return {
        "case_id": case.case_id,
        "seq": case.seq,
        "event": event.event,
        "state": case.status.value,
        "audiences": rec.audiences,
        "agencies": rec.agencies,
        "expected_by": case.expected_by,
        "at": event.at,
    }


# --- for the rebuild: many cases the read model has no rows of, a few statements for all ----------------------


@dataclass
class CaseRows:
    """Every row a case's transitions leave in the read model."""

    case: dict[str, Any]
    events: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    notifications: list[dict[str, Any]]


def new_case_rows(records: Sequence[TransitionRecord]) -> CaseRows | None:
    """The rows ``write_transition`` leaves when it writes ``records`` one after the other for a case that has no
    rows yet (or only a bare one, last_seq 0), computed here instead of read back after each write.

    ``None`` unless the records are the plain sequence this relies on (the first one the intake, with the
    complaint; numbers rising; each event numbered as its snapshot): write those one by one.
    """
    complaint = records[0].complaint if records else None
    if complaint is None:
        return None
    if any(r.event.seq != r.case.seq for r in records) or any(a.case.seq >= b.case.seq for a, b in pairwise(records)):
        return None
    first, last = records[0], records[-1]
    intake = intake_row(first.case, complaint, first.event.at)
    # Each later transition moves the row (its number is higher) to its own snapshot and clears "stuck".
    case = intake | case_snapshot(last.case) | {"updated_at": last.event.at, "stuck_at": None, "stuck_reason": None}

    events: list[dict[str, Any]] = []
    hashes: dict[int, str] = {}
    notifications: list[dict[str, Any]] = []
    for rec in records:
        timeline = chained(rec.event, hashes.get(rec.event.seq - 1))
        hashes[rec.event.seq] = timeline["hash"]
        events.append(timeline)
        channels = record_channels(rec)
        if channels is None:  # as queue_notifications reads them from the case row
            channels = intake["preferred_channels"] or ["web"]
        # Of two rows with the same key (the outbox's unique one), the first is inserted and the other ignored.
        keys: set[tuple[str, str, str]] = set()
        for row in outbox_rows(**transition_outbox(rec), channels=channels):
            key = (row["audience"], row["channel"], row["recipient"])
            if key not in keys:
                keys.add(key)
                notifications.append(row)

    # A task row is as the last transition that has the task left it, with that transition's board columns.
    tasks: dict[str, dict[str, Any]] = {}
    for rec in reversed(records):
        moved = None
        for task in reversed(rec.case.tasks):
            if task.agency not in tasks:
                moved = moved or (intake | case_snapshot(rec.case))
                tasks[task.agency] = task_row(case["case_id"], task, moved)
    return CaseRows(case, events, list(reversed(tasks.values())), notifications)


async def write_new_cases(session: AsyncSession, cases: Sequence[CaseRows]) -> None:
    """Insert the rows of cases that have none yet (a bare case row, last_seq 0, is completed as intake would),
    one statement per table. Any row already there fails the statement (rather than being skipped): a live write
    came first, and these cases must then go one transition at a time."""
    if not cases:
        return
    table = models.Base.metadata.tables["cases"]
    upsert_bare = _dialect_insert(session)(table)
    completed = {k: upsert_bare.excluded[k] for k in cases[0].case if k != "case_id"}
    upsert_bare = upsert_bare.on_conflict_do_update(
        index_elements=["case_id"], set_=completed, where=table.c.last_seq == 0
    )
    await session.execute(upsert_bare, [c.case for c in cases])
    for table_name, rows in (
        ("case_events", [r for c in cases for r in c.events]),
        ("agency_tasks", [r for c in cases for r in c.tasks]),
        ("notifications", [r for c in cases for r in c.notifications]),
    ):
        if rows:
            await session.execute(insert(models.Base.metadata.tables[table_name]), rows)


async def _supersede(session: AsyncSession, timeline: dict[str, Any], snapshot: dict[str, Any]) -> bool:
    """Replace a timeline row that holds another transition than this one at the same sequence number.

    A workflow task writes its transitions (local activities) before Temporal records that task's completion.
    When the worker or the server dies in between, the task runs again from the history, which may by then
    hold something else first (an officer's action that arrived meanwhile), so the same number goes to another
    transition: the first write was of a transition that never happened. The history is the truth: its
    transition takes the row (chained to its predecessor as it is now), the case row if that write left it
    there, and the row's notifications not sent yet. A retry of the same transition finds its own row (the
    same content hashes alike) and changes nothing. Returns whether the row was replaced.
    """
    case_id, seq = timeline["case_id"], timeline["seq"]
    stored = (
        await session.execute(
            select(models.CaseEvent.event, models.CaseEvent.prev_hash, models.CaseEvent.hash).where(
                models.CaseEvent.case_id == case_id, models.CaseEvent.seq == seq
            )
        )
    ).one_or_none()
    if stored is None or event_hash(stored.prev_hash, timeline | {"prev_hash": stored.prev_hash}) == stored.hash:
        return False
    keys = {"case_id", "seq"}
    await session.execute(
        update(models.CaseEvent)
        .where(models.CaseEvent.case_id == case_id, models.CaseEvent.seq == seq)
        .values(**{k: v for k, v in timeline.items() if k not in keys})
    )
    await session.execute(
        delete(models.Notification).where(
            models.Notification.case_id == case_id,
            models.Notification.seq == seq,
            models.Notification.status == "pending",
        )
    )
    await session.execute(
        update(models.Case)
        .where(models.Case.case_id == case_id, models.Case.last_seq == seq)
        .values(updated_at=timeline["at"], **snapshot)
    )
    log.warning("timeline_row_superseded", case_id=case_id, seq=seq, was=stored.event, now=timeline["event"])
    return True


class ReadModelActivities:
    """Activities that project workflow transitions into the SQL read model."""

    def __init__(self, db: Database, history: HistorySource | None = None) -> None:
        self.db = db
        self.history = history

    @activity.defn(name=RECORD_TRANSITION)
    async def record_transition(self, rec: TransitionRecord) -> TransitionRecord:
        """Write one transition (read model and outbox) in one transaction; re-project the case if behind.

        Answers with the record it wrote: the history keeps the answer, and a rebuild reads it from there
        (``activities.rebuild.records_in_history``) instead of replaying the workflow."""
        case = rec.case
        try:
            try:
                if not await self._write_at_once(rec):
                    async with self.db.session() as session:
                        await write_transition(session, rec)
            except CaseBehind:
                # Rolled back: write what the history holds first (this transition is not in it yet).
                await self.reproject(case.case_id)
                async with self.db.session() as session:
                    await write_transition(session, rec, allow_gap=True)
        except Exception as exc:
            if not is_permanent(exc):
                raise  # the database is away: the local activity retries with backoff
            await self._mark_stuck(case, exc)
            raise ApplicationError(
                f"the read model refused transition {case.seq}: {type(exc).__name__}",
                type=PROJECTION_REFUSED,
                non_retryable=True,
            ) from None
        log.info("recorded", case_id=case.case_id, seq=case.seq, event_name=rec.event.event, state=case.status.value)
        return rec

    async def _write_at_once(self, rec: TransitionRecord) -> bool:
        """``write_transition_at_once``; if the database refuses its statement, the general path decides (and
        refuses it too if the data is bad): a case is never marked stuck for the way it was written."""
        try:
            return await write_transition_at_once(self.db, rec)
        except Exception as exc:
            if not is_permanent(exc):  # CaseBehind, the database away: as the general path would raise them
                raise
            log.warning("write_at_once_refused", case_id=rec.case.case_id, seq=rec.case.seq, error=type(exc).__name__)
            return False

    async def reproject(self, case_id: str) -> int:
        """Write every transition the case's history holds (idempotently); returns how many there were."""
        if self.history is None:
            return 0
        records = await self.history(case_id)
        for rec in records:
            async with self.db.session() as session:
                await write_transition(session, rec, allow_gap=True)
        log.warning("case_reprojected", case_id=case_id, transitions=len(records))
        return len(records)

    async def _mark_stuck(self, case: CaseState, exc: Exception) -> None:
        """Show the case on the board as stuck; a case the read model never had gets a bare row to show."""
        now = datetime.now(UTC)
        reason = f"{type(exc).__name__} writing the read model"
        async with self.db.session() as session:
            marked = await session.execute(
                update(models.Case).where(models.Case.case_id == case.case_id).values(stuck_at=now, stuck_reason=reason)
            )
            if not getattr(marked, "rowcount", 0):
                bare = {
                    "case_id": case.case_id,
                    "tracking_code": case.tracking_code,
                    "workflow_id": workflow_id_for(case.case_id),
                    "status": case.status.value,
                    "channel": case.channel,
                    "description": "",
                    "received_at": case.received_at,
                    "updated_at": now,
                    "last_seq": 0,  # anything the history holds overwrites it
                    "stuck_at": now,
                    "stuck_reason": reason,
                }
                await session.execute(insert_ignoring_duplicates(session, models.Case, bare, ["case_id"]))
        # The exception text may quote bound values (personal data): log its type only.
        log.error("projection_refused", case_id=case.case_id, error=type(exc).__name__)

    @activity.defn(name="project_event")
    async def project_event(self, req: ProjectionRequest) -> None:
        """Version 1 of the write (histories recorded before ``record_transition``): no outbox rows."""
        async with self.db.session() as session:
            await write_snapshot(session, req.event, req.case, req.complaint, allow_gap=True)
        log.info("projected", case_id=req.case.case_id, seq=req.event.seq, event_name=req.event.event)

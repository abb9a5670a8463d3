"""What the routes do with Temporal: file a complaint, perform an action. Keyword-only, one concern each."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any, cast

import structlog
from sqlalchemy import Table, bindparam, exists, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.projection import intake_row
from activities.sla import SlaActivities, snapshot_of
from api.errors import AppError, conflict, forbidden
from api.ids import new_case_id, new_tracking_code
from api.schemas import ComplaintIn
from api.views import expected_date, state_view
from config.settings import Settings
from domain.complaint import DEFAULT_CENTRE
from intake.idempotency import Answer, Idempotency, answer_of, claim, fingerprint, key_in_flux, key_row
from intake.relay import CaseStart, IntakeRelay, dump_input
from sla.rules import DeadlineRule
from store import models
from store.db import Database
from workflows.case_rules import CaseRules
from workflows.complaint import ACTION_NOT_ALLOWED, ComplaintWorkflow, workflow_id_for
from workflows.models import (
    ActionRequest,
    AgencyTask,
    CaseInput,
    CaseState,
    CaseSummary,
    Deadline,
    PolicySnapshot,
    ScheduleRequest,
)
from workflows.process import (
    INITIAL_STATE,
    ROLE_LABELS,
    STATE_LABELS,
    Actor,
    Context,
    Role,
    State,
    Transition,
    action_words,
    allowed_events,
)

log = structlog.get_logger(__name__)

_FORBIDDEN_CODES = {"role_not_allowed", "no_task"}


def temporal_unavailable(*, saved: bool | None = False, retry_after: int = 5) -> AppError:
    """503: Temporal is away or failing. ``saved`` says truthfully whether the request is on record (None:
    it cannot be known now; a retry with the same Idempotency-Key is safe either way)."""
    if saved is None:
        message = (
            "The case service is busy or restarting and could not confirm your request. Send it again with the "
            "same Idempotency-Key: it will be applied once, never twice."
        )
        message_th = (
            "ระบบดำเนินเรื่องไม่พร้อมชั่วคราวและยังยืนยันคำขอของท่านไม่ได้ กรุณาส่งใหม่ด้วย Idempotency-Key เดิม "
            "ระบบจะดำเนินการเพียงครั้งเดียว"
        )
    elif saved:
        message = (
            "The case service is busy or restarting; your request is recorded and will be applied. "
            "Check its result later, or send it again with the same Idempotency-Key."
        )
        message_th = (
            "ระบบดำเนินเรื่องไม่พร้อมชั่วคราว คำขอของท่านได้รับการบันทึกแล้วและจะดำเนินการต่อ "
            "กรุณาตรวจสอบผลภายหลัง หรือส่งใหม่ด้วย Idempotency-Key เดิม"
        )
    else:
        message = "The case service is busy or restarting; nothing was changed. Please try again in a minute."
        message_th = "ระบบดำเนินเรื่องไม่พร้อมใช้งานชั่วคราว ยังไม่มีการเปลี่ยนแปลงใด กรุณาลองใหม่อีกครั้งในอีกสักครู่"
    return AppError(
        status=503,
        code="temporarily_unavailable",
        message=message,
        message_th=message_th,
        headers={"Retry-After": str(retry_after)},
    )


def too_busy(retry_after: int = 2) -> AppError:
    """429: Temporal refused for load (RESOURCE_EXHAUSTED, e.g. too many concurrent updates on one case)."""
    return AppError(
        status=429,
        code="too_busy",
        message="Too many requests are being made on this case right now; nothing was changed. Try again shortly.",
        message_th="ขณะนี้มีคำขอต่อเรื่องนี้มากเกินไป ยังไม่มีการเปลี่ยนแปลงใด กรุณาลองใหม่อีกครั้งในอีกสักครู่",
        headers={"Retry-After": str(retry_after)},
    )


def case_not_ready() -> AppError:
    """503: the case is committed but its workflow has not been started yet (intake relay lagging)."""
    return AppError(
        status=503,
        code="case_not_ready",
        message="This case was received moments ago and is still being registered; try again in a few seconds.",
        message_th="เรื่องนี้เพิ่งได้รับและยังอยู่ระหว่างลงทะเบียนในระบบ กรุณาลองใหม่อีกครั้งในอีกไม่กี่วินาที",
        headers={"Retry-After": "2"},
    )


def temporal_error(exc: BaseException, *, saved: bool | None = False) -> AppError | None:
    """The HTTP answer to an error from Temporal (None: not one of Temporal's). Never a 500:
    RESOURCE_EXHAUSTED is 429, NOT_FOUND a finished case (409), everything else 503, all with Retry-After."""
    if isinstance(exc, RPCError):
        if exc.status is RPCStatusCode.RESOURCE_EXHAUSTED:
            return too_busy()
        if exc.status is RPCStatusCode.NOT_FOUND:
            return conflict(
                "This case is no longer open for actions.",
                "เรื่องนี้ยุติแล้ว ไม่สามารถดำเนินการได้",
                code="case_finished",
            )
        return temporal_unavailable(saved=saved)
    if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError | TimeoutError):
        return temporal_unavailable(saved=saved)
    if isinstance(exc, RuntimeError) and _connect_failure(exc):
        return temporal_unavailable(saved=saved)
    return None


@dataclass(frozen=True)
class IntakeDesk:
    """What filing needs, built once per process (``app.state.intake``): the database, the settings, the
    SLA calendar and policy (the receipt's dates are the ones the workflow will compute), and the relay to
    kick after each commit."""

    db: Database
    settings: Settings
    sla: SlaActivities
    relay: IntakeRelay | None = None

    @cached_property
    def policy(self) -> PolicySnapshot:
        """The policy figures a new case records, made once per process (the configuration does not change
        while it runs), not once per complaint. Case rules only read it (a new policy is a new object)."""
        return snapshot_of(self.sla.policy, self.sla.category_classes)


_ID_TRIES = 3
# Core inserts on the tables, not the ORM entities: an ORM insert with parameters goes through the ORM's bulk
# path, which maps every key to its attribute per row (about a tenth of the API's CPU per complaint).
_INSERT_CASE = insert(cast(Table, models.Case.__table__))
_INSERT_OUTBOX = insert(cast(Table, models.IntakeOutbox.__table__))


async def file_complaint(
    desk: IntakeDesk,
    *,
    complaint: ComplaintIn,
    actor: Actor,
    idempotency: Idempotency | None = None,
) -> Answer:
    """File a complaint from any channel: the ONE entry point (web, LINE, Open311, email, officers).

    Commits the case (status received, tracking code, expected date), the intake outbox row holding the
    workflow's input and the idempotency key together (on PostgreSQL in one statement, one round trip; on
    SQLite in one transaction), kicks the relay, and returns the answer
    (201, the receipt, its Location). Temporal is not called: the answer means "durable in the database",
    and the relay starts the workflow (intake/relay.py). With ``idempotency``, a key already used for the
    same complaint returns that first answer (a different complaint: 422), and files nothing.
    """
    print_ = fingerprint("intake", complaint.channel.value, complaint.model_dump(mode="json"))
    for attempt in range(_ID_TRIES):
        now = datetime.now(UTC)
        case_id, tracking_code = new_case_id(now), new_tracking_code()
        answer, case, inp = await _receipt(desk, complaint, actor, case_id, tracking_code, now)
        try:
            if not desk.db.is_sqlite and await _file_at_once(desk, case, inp, now, idempotency, print_, answer):
                break
            # SQLite, or the key was taken before: one transaction, which finds the key's first answer.
            async with desk.db.session() as session:
                if idempotency is not None:
                    existing = await claim(
                        session,
                        idempotency,
                        fingerprint=print_,
                        kind="intake",
                        now=now,
                        ttl=timedelta(hours=desk.settings.idempotency_ttl_hours),
                        case_id=case_id,
                        answer=answer,
                    )
                    if existing is not None:
                        stored = answer_of(existing)
                        if stored is None:  # an intake key always has its answer: written in one transaction
                            raise key_in_flux()
                        log.info("intake_replayed", case_id=existing.case_id)
                        return stored
                # Parameters apart from the statements: their compiled forms are cached (a third of the CPU).
                await session.execute(_INSERT_CASE, intake_row(case, inp.complaint, now))
                await session.execute(_INSERT_OUTBOX, _outbox_row(desk, inp, idempotency, now))
        except IntegrityError:
            # A case number or tracking code drawn twice (1 in 10^9): draw again.
            if attempt == _ID_TRIES - 1:
                raise
            continue
        break
    structlog.contextvars.bind_contextvars(case_id=case_id)
    log.info("complaint_filed", channel=complaint.channel.value)
    if desk.relay is not None:
        desk.relay.kick()
    return answer


def _outbox_row(desk: IntakeDesk, inp: CaseInput, idempotency: Idempotency | None, now: datetime) -> dict[str, Any]:
    """The intake outbox row: the workflow's input, for the relay to start."""
    return {
        "case_id": inp.case_id,
        "task_queue": desk.settings.task_queue,
        "case_input": dump_input(inp),
        "idempotency_key": idempotency.key if idempotency else None,
        "created_at": now,
        "status": "pending",
        "attempts": 0,
    }


async def _file_at_once(
    desk: IntakeDesk,
    case: CaseState,
    inp: CaseInput,
    now: datetime,
    idempotency: Idempotency | None,
    print_: str,
    answer: Answer,
) -> bool:
    """On PostgreSQL, file in ONE round trip: the key's claim, the case and its outbox row in one statement
    (data-modifying CTEs), run outside an explicit transaction, so without a BEGIN and a COMMIT of their own.
    A statement is atomic: all three rows or none. The transaction's four or five round trips each waited
    their turn for the CPU under load (docs/performance.md), and are each a network round trip when the
    database is on another host. False when the key was already taken: its first answer is read by the
    transaction ``file_complaint`` falls back to. An IntegrityError (a case number drawn twice) writes
    nothing, as before."""
    row = intake_row(case, inp.complaint, now)
    params = {f"c_{name}": value for name, value in row.items()}
    params.update({f"o_{name}": value for name, value in _outbox_row(desk, inp, idempotency, now).items()})
    if idempotency is not None:
        key = key_row(
            idempotency,
            fingerprint=print_,
            kind="intake",
            now=now,
            ttl=timedelta(hours=desk.settings.idempotency_ttl_hours),
            case_id=case.case_id,
            answer=answer,
        )
        params.update({f"k_{name}": value for name, value in key.items()})
    statement = _filing_statement(tuple(row), idempotency is not None)
    async with desk.db.autocommit.begin() as conn:
        filed = (await conn.execute(statement, params)).first()
    return filed is not None


@lru_cache(maxsize=4)
def _filing_statement(case_columns: tuple[str, ...], with_key: bool) -> Any:
    """``WITH claimed AS (INSERT key ON CONFLICT DO NOTHING RETURNING), filed AS (INSERT case SELECT ... WHERE
    EXISTS claimed RETURNING) INSERT outbox SELECT ... FROM filed RETURNING``: the case and its outbox row only
    if the key was ours. Built once per shape; its compiled form is cached like any other statement's."""
    cases = cast(Table, models.Case.__table__)
    outbox = cast(Table, models.IntakeOutbox.__table__)
    keys = cast(Table, models.IdempotencyKey.__table__)
    values = select(*(bindparam(f"c_{name}", type_=cases.c[name].type) for name in case_columns))
    if with_key:
        claimed = (
            pg_insert(keys)
            .values({c.name: bindparam(f"k_{c.name}", type_=c.type) for c in keys.c})
            .on_conflict_do_nothing()  # every unique index an arbiter, as in intake.idempotency.claim
            .returning(keys.c.key)
            .cte("claimed")
        )
        values = values.where(exists(select(claimed.c.key)))
    filed = insert(cases).from_select(case_columns, values).returning(cases.c.case_id).cte("filed")
    rest = [name for name in _OUTBOX_COLUMNS if name != "case_id"]
    return (
        insert(outbox)
        .from_select(
            ["case_id", *rest],
            select(filed.c.case_id, *(bindparam(f"o_{name}", type_=outbox.c[name].type) for name in rest)),
        )
        .returning(outbox.c.case_id)
    )


_OUTBOX_COLUMNS = ("case_id", "task_queue", "case_input", "idempotency_key", "created_at", "status", "attempts")


class _ReceiptScheduler:
    """The case rules' Scheduler port over this process's calendar: the arithmetic the worker records."""

    def __init__(self, sla: SlaActivities) -> None:
        self._sla = sla

    async def schedule(self, start: datetime, rule: DeadlineRule, working_days: int | None = None) -> Deadline:
        return self._sla.schedule_for(ScheduleRequest(start, rule, working_days))

    async def days_left(self, now: datetime, due_at: datetime) -> int:
        return self._sla.calendar.working_days_between(now, due_at)


class _NoClocks:
    """Filing starts no agency task: the port is never called at intake."""

    async def start(self, task: AgencyTask) -> None:
        raise AssertionError("intake starts no task")

    async def move(self, task: AgencyTask) -> None:
        raise AssertionError("intake moves no task")

    async def finish(self, task: AgencyTask) -> None:
        raise AssertionError("intake finishes no task")


async def _receipt(
    desk: IntakeDesk, complaint: ComplaintIn, actor: Actor, case_id: str, tracking_code: str, now: datetime
) -> tuple[Answer, CaseState, CaseInput]:
    """The case as intake records it, the workflow's input and the answer, with the workflow's own dates.

    The same ``CaseRules.file`` the workflow runs on the same complaint (kind, priority, category: the SLA
    class) and the same receipt time, so the dates the citizen is given are the ones the case will keep.
    """
    settings = desk.settings
    filed = complaint.to_complaint()
    case = CaseState(
        case_id=case_id,
        tracking_code=tracking_code,
        status=INITIAL_STATE,
        received_at=now,
        channel=filed.channel.value,
        category=filed.category,
        occurred_on=filed.occurred_on.isoformat() if filed.occurred_on else None,
        kind=filed.kind.value,
        priority=filed.priority.value,
        centre=filed.centre or DEFAULT_CENTRE,
    )
    rules = CaseRules(case, desk.policy, _ReceiptScheduler(desk.sla), _NoClocks(), workflow_id_for(case_id))
    await rules.file(now)
    inp = CaseInput(
        case_id=case_id,
        tracking_code=tracking_code,
        complaint=filed,
        filed_by=actor,
        search_attributes=settings.search_attributes,
        auto_screen=settings.auto_screen,
        received_at=now,
    )
    assert case.deadline is not None  # filing always starts the screening clock
    body = {
        "case_id": case_id,
        "tracking_code": tracking_code,
        "status": state_view(INITIAL_STATE.value),
        "expected_by": (d.isoformat() if (d := expected_date(case.expected_by)) else None),
        "due_at": case.deadline.due_at.isoformat(),
    }
    return Answer(201, body, f"/api/v1/track/{tracking_code}"), case, inp


def _connect_failure(exc: RuntimeError) -> bool:
    # A lazily connected client reports an unreachable server as a RuntimeError, not an RPCError.
    return str(exc).startswith("Failed client connect")


def refusal(code: str, reason: str, reason_th: str = "") -> AppError:
    """The HTTP answer to a refusal of the process table: 403 for who is asking, 409 for the case's state; in
    Thai the table's own reason where it came with one."""
    if code in _FORBIDDEN_CODES:
        return forbidden(reason, reason_th or "ท่านไม่มีสิทธิ์ดำเนินการนี้กับเรื่องนี้", code=code)
    return conflict(reason, reason_th or "ไม่สามารถดำเนินการนี้ได้ในสถานะปัจจุบันของเรื่อง", code=code)


def not_now(state: State, action: str, actor: Actor, ctx: Context) -> AppError:
    """The 409 for an action the case's state does not allow, in words its reader knows: the action and the
    state by their labels, and what this reader may do now (their buttons, not every edge of the table)."""
    action_en, action_th = action_words(action)
    state_en, state_th = STATE_LABELS[state]
    possible = allowed_events(state, actor, ctx)
    labels = [action_words(t.event) for t in possible]
    if labels:
        now_en = "What you can do now: " + ", ".join(f"“{en}”" for en, _ in labels) + "."
        now_th = "สิ่งที่ท่านทำได้ตอนนี้: " + " ".join(f"“{th}”" for _, th in labels)
    else:
        now_en, now_th = "There is nothing you can do on it now.", "ขณะนี้ไม่มีรายการที่ท่านทำได้กับเรื่องนี้"
    return conflict(
        f"“{action_en}” is not possible now: the case is “{state_en}”. {now_en}",
        f"ทำรายการ “{action_th}” ไม่ได้ในขณะนี้ เพราะเรื่องอยู่ในสถานะ “{state_th}” {now_th}",
        code="not_allowed_in_state",
        allowed_actions=[t.event for t in possible],
    )


def not_yours(transition: Transition) -> AppError:
    """The 403 for an action the caller's role does not take: the action by its label and who takes it."""
    action_en, action_th = action_words(transition.event)
    who = [ROLE_LABELS[r] for r in Role if r in transition.roles and r in ROLE_LABELS]
    return forbidden(
        f"“{action_en}” is for " + " or ".join(en for en, _ in who) + ", not for you.",
        f"รายการ “{action_th}” เป็นของ" + " หรือ".join(th for _, th in who) + " ท่านจึงทำรายการนี้ไม่ได้",
        code="role_not_allowed",
    )


def _update_failure(exc: WorkflowUpdateFailedError) -> AppError:
    """A failed update changed nothing: the table's refusal (403/409), or 503 while the case is being filed."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == ACTION_NOT_ALLOWED:
        code = str(cause.details[0]) if cause.details else "not_allowed_in_state"
        if code == "not_filed":
            return case_not_ready()
        return refusal(code, cause.message, str(cause.details[1]) if len(cause.details) > 1 else "")
    return conflict(
        "The case could not perform this action; nothing was changed.",
        "ไม่สามารถดำเนินการนี้กับเรื่องได้ ยังไม่มีการเปลี่ยนแปลงใด",
        code="action_failed",
    )


class WithStartUnavailable(Exception):
    """The Temporal server does not take update-with-start (an older server, or ``ExecuteMultiOperation``
    switched off): nothing was sent; the caller waits for a relay to start the workflow instead."""


async def perform_action(
    *,
    client: Client,
    case_id: str,
    request: ActionRequest,
    update_id: str,
    wait_seconds: float,
    start: CaseStart | None = None,
) -> CaseSummary | None:
    """Send the action to the case workflow's ``act`` update under ``update_id`` (Temporal dedupes it, so
    sending it again with the same id acts once) and wait at most ``wait_seconds`` for its result.

    With ``start`` (a case the API committed and no worker has filed yet), the action starts the workflow
    itself if no relay has (update-with-start): the officer who acts on a case filed a moment ago, or during a
    relay's backlog after an outage, does not wait for the relay.

    Returns the summary once applied, or None if it is still pending after the wait (the caller answers 202
    and the result can be read with :func:`action_result`). Refusals are 403/409; Temporal's errors 429/503
    with Retry-After, saying truthfully whether the action is on record; never a 500.
    """
    try:
        async with asyncio.timeout(wait_seconds):
            return await _execute(client, case_id, request, update_id, start)
    except WorkflowUpdateFailedError as exc:
        raise _update_failure(exc) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        if await _task_failing(client, workflow_id_for(case_id)):
            log.error("action_pending_on_failing_task", case_id=case_id, action=request.event)
            raise temporal_unavailable(saved=True) from None
        log.warning("action_pending", case_id=case_id, action=request.event)
        return None
    except (RPCError, RuntimeError) as exc:
        saved = await _update_known(client, case_id, update_id)
        mapped = temporal_error(exc, saved=saved)
        if mapped is None:
            raise
        status = exc.status.name if isinstance(exc, RPCError) else "unreachable"
        log.error("action_failed", case_id=case_id, error=status)
        raise mapped from None


async def _execute(
    client: Client, case_id: str, request: ActionRequest, update_id: str, start: CaseStart | None
) -> CaseSummary:
    """The ``act`` update, sent with the workflow's start when ``start`` is given."""
    if start is not None:
        try:
            return await client.execute_update_with_start_workflow(
                ComplaintWorkflow.act, request, id=update_id, start_workflow_operation=start.operation()
            )
        except WorkflowAlreadyStartedError:
            pass  # its run has closed (no second run is ever started): the plain update says how
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED):
                raise WithStartUnavailable from None
            raise
    handle = client.get_workflow_handle_for(ComplaintWorkflow.run, workflow_id_for(case_id))
    return await handle.execute_update(ComplaintWorkflow.act, request, id=update_id)


async def action_result(
    *,
    client: Client,
    case_id: str,
    request: ActionRequest,
    update_id: str,
    wait_seconds: float,
    start: CaseStart | None = None,
) -> CaseSummary | None:
    """The result of an action sent earlier under ``update_id``: the summary once applied, None while pending,
    its refusal raised. If Temporal never got it (its server restarted before the action was accepted), it is
    sent again under the same id (with ``start``, as :func:`perform_action`), so it still acts at most once."""
    handle = client.get_workflow_handle(workflow_id_for(case_id)).get_update_handle_for(
        ComplaintWorkflow.act, update_id
    )
    try:
        async with asyncio.timeout(wait_seconds):
            return await handle.result()
    except WorkflowUpdateFailedError as exc:
        raise _update_failure(exc) from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            mapped = temporal_error(exc, saved=True)
            raise (mapped or exc) from None
    try:
        return await perform_action(
            client=client, case_id=case_id, request=request, update_id=update_id, wait_seconds=wait_seconds, start=start
        )
    except WithStartUnavailable:
        return None  # not started yet: a relay will start it, and the action is still to be sent


async def _task_failing(client: Client, workflow_id: str) -> bool:
    """Whether the case's workflow task keeps failing (a bug or a worker that cannot run it)."""
    try:
        desc = await asyncio.wait_for(client.get_workflow_handle(workflow_id).describe(), timeout=2.0)
    except (RPCError, RuntimeError, TimeoutError):
        return False
    pending = desc.raw_description.pending_workflow_task
    return desc.raw_description.HasField("pending_workflow_task") and pending.attempt > 1


async def _update_known(client: Client, case_id: str, update_id: str) -> bool | None:
    """After an error: whether Temporal has the update (True/False), or None if it cannot be asked."""
    handle = client.get_workflow_handle(workflow_id_for(case_id)).get_update_handle(update_id)
    try:
        async with asyncio.timeout(1.0):
            await handle.result()
    except WorkflowUpdateFailedError:
        return True
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return True  # known and still pending
    except RPCError as exc:
        return False if exc.status is RPCStatusCode.NOT_FOUND else None
    except RuntimeError:
        return None
    return True

"""Case work shared by the staff and citizen routes: the read model's view of a case, and running an action."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.actions import action_model
from api.errors import AppError, ErrorDetail, not_found
from api.ids import normalise_tracking_code
from api.service import (
    WithStartUnavailable,
    action_result,
    case_not_ready,
    not_now,
    not_yours,
    perform_action,
    refusal,
)
from api.views import context_of, state_view
from intake.idempotency import (
    Answer,
    Idempotency,
    answer_of,
    claim,
    fingerprint,
    idempotency_of,
    key_reused,
    settle,
    update_id_for,
)
from intake.relay import CaseStart, case_start
from screening.service import reference_from_settings
from store import models, queries
from store.db import Database, release
from store.models import IdempotencyKey
from workflows.models import ActionRequest, CaseSummary
from workflows.process import EVENTS, SYSTEM_EVENTS, Actor, Context, Role, State, decide, transition_for

log = structlog.get_logger(__name__)

ACTIONS = sorted(EVENTS - SYSTEM_EVENTS)


async def case_by_code(session: AsyncSession, tracking_code: str) -> models.Case:
    """The case with this tracking code (spelled any way a citizen may), or 404."""
    code = normalise_tracking_code(tracking_code)
    case = await queries.case_by_tracking_code(session, code=code) if code else None
    if case is None:
        raise not_found(
            "No case has this tracking code. Check the code on your receipt (10 letters and digits).",
            "ไม่พบเรื่องที่มีรหัสติดตามนี้ กรุณาตรวจสอบรหัส 10 หลักบนใบรับเรื่อง",
        )
    return case


async def timeline_of(session: AsyncSession, case: models.Case) -> list[models.CaseEvent]:
    """The case's transitions, in order."""
    return await queries.case_timeline(session, case_id=case.case_id)


async def tasks_and_context(
    session: AsyncSession, case: models.Case, request: Request
) -> tuple[list[models.AgencyTask], Context]:
    """The case's agency tasks and the guards' context, from the read model."""
    tasks = await queries.case_tasks(session, case_id=case.case_id)
    return tasks, context_of(case, tasks, request.app.state.policy, datetime.now(UTC))


def _unknown_action(action: str) -> AppError:
    listed = ", ".join(ACTIONS)
    return AppError(
        status=422,
        code="unknown_action",
        message=f"'{action}' is not an action. Actions: {listed}.",
        message_th=f"ไม่มีการดำเนินการ '{action}' การดำเนินการที่มี: {listed}",
    )


# While a case's workflow is not started yet (the relay lags), an action waits this long before a 503.
_NOT_STARTED_WAIT = 5.0
_ACTION_REQUEST = TypeAdapter(ActionRequest)


def action_scope(case: models.Case, actor: Actor) -> tuple[str, Callable[[str], str]]:
    """Where an action's Idempotency-Key is kept and where its result can be read: a complainant's by the
    tracking code they hold (``/api/v1/track/...``), staff's (and the system's) per person by case number."""
    if actor.role is Role.CITIZEN:
        code = case.tracking_code
        return f"track:{code}", lambda request_id: f"/api/v1/track/{code}/action-requests/{request_id}"
    return f"staff:{actor.id}", lambda request_id: f"/api/v1/cases/{case.case_id}/action-requests/{request_id}"


async def run_action(
    *,
    case: models.Case,
    action: str,
    actor: Actor,
    body: dict[str, Any] | None,
    session: AsyncSession,
    client: Client,
    request: Request,
    key: str | None,
    render: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> Answer:
    """Validate ``action`` against the table and its field specs, send it to the case's workflow, and return
    the answer: 200 with ``render()``'s view (empty without one) once applied, 403/409 when refused, 202 with
    a Location (:func:`action_scope`) when the workflow has not answered within ``action_wait_seconds``.

    Every action gets a key (the caller's ``Idempotency-Key`` in ``scope``, or a fresh one) whose digest is
    its Temporal update id: the same key sent again, concurrently or later, acts once and gets the same
    answer; the same key with another request is a 422.
    """
    if action not in EVENTS or action in SYSTEM_EVENTS:
        raise _unknown_action(action)
    settings = request.app.state.settings
    scope, location = action_scope(case, actor)
    idem = idempotency_of(scope, key) or Idempotency(scope, f"auto-{uuid.uuid4()}")
    update_id = update_id_for(idem)
    print_ = fingerprint("action", f"{case.case_id}/{action}", body)
    now = datetime.now(UTC)
    # Two transactions on the request's session, where there were five: the early check and the key's claim
    # (committed before anything is sent, so that a retry finds it), then the answer's view and the key's
    # answer. Each transaction is a BEGIN and a COMMIT more, and under load every round trip waits for the
    # database's turn on the cores (docs/performance.md, "The lifecycle over the API").
    try:
        act = await _validated(case, action, actor, body, session, request)
        failure: Exception | None = None
    except (AppError, RequestValidationError) as exc:
        act, failure = None, exc
    if failure is not None:
        # Refused before anything was sent: unless the key was used by an earlier request that was sent (and
        # the case has moved on since), the refusal is the answer.
        existing = await session.get(IdempotencyKey, (idem.scope, idem.key))
        if existing is not None and existing.expires_at > now and existing.fingerprint != print_:
            raise key_reused()
        if existing is None or existing.expires_at <= now or existing.request is None:
            raise failure
    else:
        assert act is not None
        existing = await claim(
            session,
            idem,
            fingerprint=print_,
            kind="action",
            now=now,
            ttl=timedelta(hours=settings.idempotency_ttl_hours),
            case_id=case.case_id,
            update_id=update_id,
            request=_ACTION_REQUEST.dump_python(act, mode="json"),
        )
    if existing is not None:
        if (stored := answer_of(existing)) is not None:
            return stored
        assert existing.request is not None and existing.update_id is not None
        act, update_id = _ACTION_REQUEST.validate_python(existing.request), existing.update_id
    assert act is not None
    start = await _unfiled_start(session, case)
    await session.commit()  # the key is kept; no pooled connection is held while Temporal answers
    try:
        summary = await _send(case, act, update_id, start, session=session, client=client, request=request)
    except AppError as exc:
        if exc.status in (403, 409) and exc.code != "case_finished":
            return await _settle(session, idem, error_answer(exc))
        if exc.code == "temporarily_unavailable":  # the action may be on record: say where to look
            exc.headers.setdefault("Location", location(update_id))
        raise
    if summary is None:
        return pending_answer(case.case_id, action, update_id, location(update_id))
    await session.refresh(case)
    view = await render() if render is not None else {}
    return await _settle(session, idem, Answer(200, view))


def pending_answer(case_id: str, action: str, update_id: str, where: str) -> Answer:
    """202: the action is on record at Temporal and not applied yet; ``where`` tells its result later."""
    body = {
        "request_id": update_id,
        "case_id": case_id,
        "action": action,
        "state": "pending",
        "message": "The action is recorded and not applied yet; its result will be at the Location given.",
        "message_th": "บันทึกคำขอดำเนินการแล้วแต่ยังไม่มีผล ตรวจสอบผลได้ที่ตำแหน่ง (Location) ที่แจ้งไว้",
    }
    return Answer(202, body, where)


def error_answer(exc: AppError) -> Answer:
    """An error as an answer that a retry with the same key gets back unchanged."""
    details = [d.model_dump(mode="json", exclude_none=True) for d in exc.details]
    error = {"status": exc.status, "code": exc.code, "message": exc.message, "message_th": exc.message_th}
    return Answer(exc.status, {"error": error | {"details": details}})


async def _settle(session: AsyncSession, idem: Idempotency, answer: Answer) -> Answer:
    """Keep ``answer`` as the key's (:func:`settle`) in ``session``'s transaction, with whatever the answer's
    view wrote (its access-log row), and commit."""
    answer = await settle(session, idem, answer)
    await session.commit()
    return answer


async def _validated(
    case: models.Case, action: str, actor: Actor, body: dict[str, Any] | None, session: AsyncSession, request: Request
) -> ActionRequest:
    """The action checked against the read model (the workflow's validator has the last word; this early
    check answers without a round trip and gives the same reasons)."""
    _, ctx = await tasks_and_context(session, case, request)
    state = State(case.status)
    early = decide(state, action, actor, None, ctx)
    if early.code == "not_allowed_in_state":
        raise not_now(state, action, actor, ctx)
    if early.code == "role_not_allowed" and (edge := transition_for(state, action)) is not None:
        raise not_yours(edge)
    if not early.allowed and early.code != "missing_fields":
        raise refusal(early.code, early.reason, early.reason_th)
    try:
        payload = action_model(action).model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    data = payload.model_dump(mode="json", exclude_none=True)
    await _check_references(data, case, session, request)
    return ActionRequest(action, actor, data)


async def _send(
    case: models.Case,
    act: ActionRequest,
    update_id: str,
    start: CaseStart | None,
    *,
    session: AsyncSession,
    client: Client,
    request: Request,
) -> CaseSummary | None:
    """Send the action to the case's workflow (``perform_action``). A case the worker has not filed yet is
    started with it (``start``, :func:`_unfiled_start`); an unfiled case without its intake row, or where the
    server refuses update-with-start, waits for a relay."""
    wait = request.app.state.settings.action_wait_seconds
    if start is None and case.last_seq == 0:
        await _until_started(case, session, request)
    try:
        return await perform_action(
            client=client, case_id=case.case_id, request=act, update_id=update_id, wait_seconds=wait, start=start
        )
    except WithStartUnavailable:
        log.warning("update_with_start_unavailable", case_id=case.case_id)
        await _until_started(case, session, request)
        return await perform_action(
            client=client, case_id=case.case_id, request=act, update_id=update_id, wait_seconds=wait
        )


async def _unfiled_start(session: AsyncSession, case: models.Case) -> CaseStart | None:
    """For a case no worker has filed yet (committed moments ago): how an action starts its workflow itself if
    no relay has yet (``perform_action``); None for a filed case, or one whose intake row is gone."""
    return await case_start(session, case.case_id) if case.last_seq == 0 else None


async def _until_started(case: models.Case, session: AsyncSession, request: Request) -> None:
    """A case not filed by its workflow yet and whose intake row is gone: kick the relay and wait briefly,
    else 503."""
    relay = getattr(request.app.state, "relay", None)
    deadline = asyncio.get_running_loop().time() + _NOT_STARTED_WAIT
    pause = 0.05
    while True:
        if relay is not None:
            relay.kick()
        await session.refresh(case)
        await release(session)
        if case.last_seq > 0:
            return
        if asyncio.get_running_loop().time() >= deadline:
            raise case_not_ready()
        # Backing off: under load a start takes seconds, and 20 waiting actions reading the case every 0.1 s
        # were a tenth of the API's CPU (bench.lifecycle_bench's profile).
        pause = min(pause * 2, 0.5)
        await asyncio.sleep(pause)


def _check_classification(data: dict[str, Any], request: Request) -> None:
    """A category, a receiving centre and an SLA class named in the payload must exist (config/categories.yaml,
    centres.yaml, sla.yaml)."""
    if "centre" in data:
        data["centre"] = str(data["centre"]).upper()
    state = request.app.state
    checks = (
        ("category", reference_from_settings(state.settings).categories, "complaint category", "ประเภทเรื่อง"),
        ("centre", state.centres.by_code, "receiving centre", "ศูนย์รับเรื่อง"),
        ("sla_class", state.policy.classes, "SLA class", "ประเภทระยะเวลาดำเนินการ (SLA class)"),
    )
    for field, known, what, what_th in checks:
        value = data.get(field)
        if value is None or value in known:
            continue
        if field == "category":  # too many to list: where the list is
            hint = "One of the categories GET /api/v1/categories lists, e.g. lighting.streetlight."
            hint_th = "ต้องเป็นประเภทที่ GET /api/v1/categories แสดง เช่น lighting.streetlight"
        else:
            sample = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
            hint, hint_th = f"Must be one of: {sample}.", f"ต้องเป็น: {sample}"
        raise AppError(
            status=422,
            code=f"unknown_{field}",
            message=f"Unknown {what} {value}.",
            message_th=f"ไม่พบ{what_th} {value}",
            details=[ErrorDetail(field=field, message=hint, message_th=hint_th)],
        )


async def _check_references(data: dict[str, Any], case: models.Case, session: AsyncSession, request: Request) -> None:
    """Agency codes and case numbers named in the payload must exist."""
    known = request.app.state.agencies
    codes = list(data.get("agencies", [])) + ([data["agency"]] if "agency" in data else [])
    if unknown := [code for code in codes if code not in known]:
        field = "agencies" if "agencies" in data else "agency"
        raise AppError(
            status=422,
            code="unknown_agency",
            message=f"Unknown agency code(s): {', '.join(unknown)}.",
            message_th=f"ไม่พบรหัสหน่วยงาน: {', '.join(unknown)}",
            details=[
                ErrorDetail(
                    field=field, message=f"Unknown: {', '.join(unknown)}.", message_th=f"ไม่พบ: {', '.join(unknown)}"
                )
            ],
        )
    if "agencies" in data:
        data["agencies"] = list(dict.fromkeys(data["agencies"]))
    _check_classification(data, request)
    original = data.get("original_case_id")
    if original is not None and (original == case.case_id or not await queries.case_exists(session, case_id=original)):
        raise AppError(
            status=422,
            code="unknown_case",
            message=f"Case {original} does not exist or is this case itself.",
            message_th=f"ไม่พบเรื่องเลขที่ {original} หรือเป็นเรื่องเดียวกัน",
            details=[
                ErrorDetail(
                    field="original_case_id", message="Name another existing case.", message_th="ระบุเลขที่เรื่องอื่นที่มีอยู่"
                )
            ],
        )


async def action_request_view(
    *,
    case: models.Case,
    request_id: str,
    actor: Actor,
    session: AsyncSession,
    client: Client,
    request: Request,
    render: Callable[[str], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Where an action answered 202 stands: ``pending``, ``applied`` (with the case's status) or ``refused``
    (with the reason). Asks Temporal for the update's outcome, waiting a moment; never hangs. Once applied,
    ``render(action)`` gives the view kept as the answer of the action's key (for the caller's retry).

    The request's ``session`` read the case: its transaction ends first (:func:`store.db.release`). Held open, each
    poll kept one connection idle while it took a second for the key and waited on Temporal, and as many
    polls at once as the pool (or a transaction-mode pooler's server connections) had left every one waiting
    for a connection until the database timeout: 503s, seen through PgBouncer with 2 server connections."""
    await release(session)
    db: Database = request.app.state.db
    async with db.session() as keys:
        row = (
            await keys.execute(
                select(IdempotencyKey).where(
                    IdempotencyKey.update_id == request_id, IdempotencyKey.case_id == case.case_id
                )
            )
        ).scalar_one_or_none()
        start = await _unfiled_start(keys, case)
    if row is None or row.request is None:
        raise not_found(
            "No action request of this case has this id.",
            "ไม่พบคำขอดำเนินการนี้ของเรื่องนี้",
            code="action_request_not_found",
        )
    act = _ACTION_REQUEST.validate_python(row.request)
    view: dict[str, Any] = {"request_id": request_id, "case_id": case.case_id, "action": act.event}
    stored = answer_of(row)
    if stored is None:
        try:
            summary = await action_result(
                client=client, case_id=case.case_id, request=act, update_id=request_id, wait_seconds=2.0, start=start
            )
        except AppError as exc:
            if exc.status not in (403, 409) or exc.code == "case_finished":
                raise
            stored = error_answer(exc)
            summary = None
        if stored is None and summary is None:
            return view | {"state": "pending"}
        if stored is None and summary is not None:
            view |= {"state": "applied", "status": state_view(summary.status.value), "seq": summary.seq}
            if (
                row.scope == action_scope(case, actor)[0]
            ):  # the caller who acted: keep their answer for retries with their key
                await _settle_apart(db, Idempotency(row.scope, row.key), Answer(200, await render(act.event)))
            return view
        assert stored is not None
        await _settle_apart(db, Idempotency(row.scope, row.key), stored)
    if stored.status_code == 200:
        status = stored.body.get("status") if isinstance(stored.body, dict) else None
        return view | {"state": "applied", "status": status}
    return view | {"state": "refused", "error": stored.body.get("error")}


async def _settle_apart(db: Database, idem: Idempotency, answer: Answer) -> None:
    """:func:`settle` in a transaction of its own (the caller reads the case in another session)."""
    async with db.session() as keys:
        await settle(keys, idem, answer)

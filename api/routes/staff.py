"""The staff consoles: the officer's screening queue, intake and search; the agency's inbox; the supervisor's
board; and the case page every one of them opens, with its actions and the process diagram.

Everything is read and done through the JSON API's own services: ``list_cases`` (the board), ``cases.render``
(the case view, access-logged), ``screening.case_screening`` (suggestions) and ``run_action`` (every button).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Principal, StaffRole
from api.casework import tasks_and_context
from api.console import HOME_OF, Problem, act_from_page, action_body, find_action, form_principal
from api.deps import OptionalPrincipal, SessionDep, SettingsDep, TemporalDep, log_read
from api.errors import AppError, forbidden, not_found
from api.routes import cases as cases_route
from api.routes import inbox as inbox_route
from api.routes import screening as screening_route
from api.routes.board import agency_meant, board_item_view, province_meant
from api.routes.citizen import STAFF_CHANNELS, category_groups, form_context, submit_complaint
from api.routes.pages import page_lang, render_page
from api.views import allowed_actions_view, classification_view, context_of, province_choices
from config.reference import regions_by_province
from config.settings import Settings
from domain.complaint import KIND_LABELS, PRIORITY_LABELS
from processdoc.svg import process_svg
from screening.service import reference_from_settings
from store import models
from store.db import release
from store.queries import case_texts, cases_with_tasks, count_in_states, extension_requests, list_cases, screening_queue
from workflows.process import EVENT_LABELS, SETTLED_STATES, STATE_LABELS, TERMINAL_STATES, Role, State

router = APIRouter(tags=["pages"], include_in_schema=False)

OFFICERS = frozenset({StaffRole.OFFICER, StaffRole.SUPERVISOR})
AGENCY_STAFF = frozenset({StaffRole.AGENCY, StaffRole.AGENCY_HEAD})
SUPERVISORS = frozenset({StaffRole.SUPERVISOR})
CASE_READERS = frozenset({*OFFICERS, *AGENCY_STAFF, StaffRole.AUDITOR})
SEARCHERS = frozenset({*OFFICERS, StaffRole.AUDITOR})
QUEUE_STATES = (State.RECEIVED, State.SCREENING)
# Back with the centre after the agency: an answer to check and close, a review to acknowledge and answer.
CLOSING_STATES = (State.RESPONDED, State.STAGE2, State.STAGE2_INVESTIGATION)
_QUEUE_SIZE = 25


def gate(request: Request, principal: Principal | None, roles: frozenset[StaffRole]) -> Response | None:
    """A sign-in redirect or a 403 page unless the signed-in user has one of ``roles``; None lets them in."""
    if principal is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if principal.role not in roles:
        settings = request.app.state.settings
        home = HOME_OF.get(principal.role, "/")
        return render_page(request, settings, "forbidden.html", 403, home=home)
    return None


# --- the board and its filters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardFilter:
    """One filter of the board: the query parameter ``list_cases`` takes and how the form asks for it.

    Filters are data: a new board parameter (kind, priority, centre, region) is one line in ``board_filters``.
    """

    name: str
    kind: str  # "bool" | "choice" | "search" (a choice typed or looked up by name: 1,220 agencies) | "int" | "text"
    choices: tuple[tuple[str, str, str], ...] = ()  # (value, label_th, label_en)
    # A value typed into the address instead of chosen (Bangkok, กทม for a province): the choice it means.
    resolve: Callable[[str], str | None] | None = None

    def parse(self, raw: str | None) -> Any:
        """The value ``list_cases`` takes; ``ValueError`` for one this filter does not know (the board showed
        every case for ``?status=zzz`` or ``?agency=`` a code that is gone, as if they had been filtered)."""
        if raw is None or raw == "":
            return None
        if self.kind == "bool":
            if (answer := _YES_NO.get(raw.lower())) is None:
                raise ValueError(raw)
            return answer
        if self.choices and raw not in {c[0] for c in self.choices}:
            meant = self.resolve(raw[:100]) if self.resolve else None
            if meant is None:
                raise ValueError(raw)
            return meant
        if self.kind == "int":
            return int(raw)
        return raw[:100]


_YES_NO = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}


def _category_choices(request: Request) -> tuple[tuple[str, str, str], ...]:
    """Each category group (all its categories), followed by its categories, indented under it."""
    reference = reference_from_settings(request.app.state.settings)
    indent = "\u00a0\u00a0\u00a0"
    under: dict[str, list[tuple[str, str, str]]] = {code: [] for code in reference.groups}
    for c in reference.categories.values():
        under.setdefault(c.group, []).append((c.code, indent + c.name_th, indent + c.name_en))
    return tuple(
        choice
        for code, group in reference.groups.items()
        for choice in ((code, group.name_th, group.name_en), *under[code])
    )


def _later_filters(request: Request) -> list[BoardFilter]:
    """Filters for the read model's classification columns, with their vocabularies."""
    centres = getattr(request.app.state, "centres", None)
    regions = {r.code: r for r in regions_by_province().values()}
    return [
        BoardFilter("category", "choice", _category_choices(request)),
        BoardFilter("kind", "choice", tuple((k.value, th, en) for k, (en, th) in KIND_LABELS.items())),
        BoardFilter("priority", "choice", tuple((p.value, th, en) for p, (en, th) in PRIORITY_LABELS.items())),
        BoardFilter(
            "centre",
            "choice",
            tuple((c.code, c.name_th, c.name_en) for c in centres.by_code.values()) if centres else (),
        ),
        BoardFilter("region", "choice", tuple((r.code, r.name_th, r.name_en) for r in regions.values())),
    ]


def board_filters(request: Request) -> list[BoardFilter]:
    """The board's filters, in the order the form shows them (the names are ``list_cases`` parameters)."""
    agencies = request.app.state.agencies
    accepted = inspect.signature(list_cases).parameters
    # Shown when list_cases takes them (the read model's classification columns).
    later = [f for f in _later_filters(request) if f.name in accepted]
    return [
        BoardFilter("open_only", "bool"),
        BoardFilter("overdue", "bool"),
        BoardFilter("at_risk", "bool"),
        BoardFilter(
            "agency",
            "search",
            tuple((c, a.name_th, a.name_en) for c, a in sorted(agencies.items())),
            resolve=lambda raw: agency_meant(agencies, raw),
        ),
        BoardFilter("stage", "int", (("1", "1", "1"), ("2", "2", "2"))),
        # The read model keeps geothai's Thai name: the choice's value, whatever language the page is in.
        BoardFilter(
            "province",
            "choice",
            tuple((p.name_th, p.name_th, p.name_en) for p in province_choices(page_lang(request))),
            resolve=province_meant,
        ),
        BoardFilter("status", "choice", tuple((s.value, th, en) for s, (en, th) in STATE_LABELS.items())),
        *later,
    ]


def _filter_values(request: Request, filters: Sequence[BoardFilter]) -> dict[str, Any]:
    """The filters in the address; a 422 naming every value the board does not know, so that a stale or
    mistyped link is never read as a filtered board."""
    values, unknown = {}, []
    for f in filters:
        raw = request.query_params.get(f.name)
        try:
            values[f.name] = f.parse(raw)
        except ValueError:
            unknown.append(f"{f.name} “{(raw or '')[:40]}”")
    if unknown:
        listed = ", ".join(unknown)
        raise AppError(
            422,
            "unknown_filter",
            f"The board has no such filter value: {listed}. Choose the filters on the board instead.",
            f"กระดานไม่มีตัวกรองค่านี้: {listed} โปรดเลือกตัวกรองจากกระดานแทน",
        )
    return values


async def _board(
    request: Request, session: AsyncSession, principal: Principal, *, page: int = 1, page_size: int = 50, **filters: Any
) -> dict[str, Any]:
    actor = principal.actor
    assert actor is not None
    result = await list_cases(
        session,
        now=datetime.now(UTC),
        calendar=request.app.state.calendar,
        page=page,
        page_size=page_size,
        **{k: v for k, v in filters.items() if v is not None},
    )
    state = request.app.state
    items = [
        board_item_view(i, actor=actor, agencies=state.agencies, centres=state.centres, policy=state.policy)
        for i in result.items
    ]
    return {
        "items": items,
        "total": result.total,
        "total_exact": result.total_exact,  # False past the count cap: "10,000+"
        "page": result.page,
        "page_size": result.page_size,
    }


def _days_left(request: Request, due_at: str | None) -> int | None:
    if not due_at:
        return None
    due = datetime.fromisoformat(due_at)
    now = datetime.now(UTC)
    if due <= now:
        return None
    calendar = request.app.state.calendar
    return int(calendar.working_days_between(now, due))


# A case ends in these: an action that leads there is taken on the case page, with the case in front of the
# user, never by one click on a list beside the button they meant (a withdrawal cannot be undone).
_ENDS = frozenset(s.value for s in TERMINAL_STATES | SETTLED_STATES)


def _row_actions(
    request: Request, principal: Principal, case: models.Case, tasks: list[models.AgencyTask]
) -> list[Any]:
    """The actions the user may take on a row now, from the process table; ``one_click`` when they need nothing
    and do not end the case."""
    actor = principal.actor
    if actor is None:
        return []
    ctx = context_of(case, tasks, request.app.state.policy, datetime.now(UTC))
    actions = allowed_actions_view(case, ctx, actor)
    for a in actions:
        a["one_click"] = a["leads_to"] not in _ENDS and not any(f["required"] for f in a["fields"])
    return actions


@router.get("/board", response_class=HTMLResponse)
async def board_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The supervisor's board: overdue and at-risk cases, most late first, with filters."""
    if (refused := gate(request, principal, SUPERVISORS)) is not None:
        return refused
    assert principal is not None
    filters = board_filters(request)
    values = _filter_values(request, filters)
    board = await _board(request, session, principal, page=page, **values)
    texts = await case_texts(session, [row["case_id"] for row in board["items"]])
    for row in board["items"]:  # what each case is about, as on the queue and the inbox
        if (found := texts.get(row["case_id"])) is not None:
            row["subject"] = subject_line(*found)
    query = urlencode({k: request.query_params[k] for k in values if request.query_params.get(k)})
    categories = reference_from_settings(settings).categories
    return render_page(
        request,
        settings,
        "board.html",
        board=board,
        filters=filters,
        values=values,
        query=query,
        categories=categories,
        requests=await _extension_requests(request, session),
        wide=True,
    )


async def _extension_requests(request: Request, session: AsyncSession) -> dict[str, Any]:
    """The agencies' requests for more time that wait for a supervisor, each with what its case is about."""
    found, more = await extension_requests(session)
    agencies = request.app.state.agencies
    texts = await case_texts(session, [r.case_id for r in found])  # one statement, not one a request
    rows = []
    for r in found:
        text = texts.get(r.case_id)
        agency = agencies.get(r.agency)
        rows.append(
            {
                "case_id": r.case_id,
                "agency": r.agency,
                "agency_th": agency.name_th if agency else r.agency,
                "agency_en": agency.name_en if agency else r.agency,
                "working_days": r.working_days,
                "due_at": r.due_at,
                "subject": subject_line(*text) if text else "",
            }
        )
    return {"rows": rows, "more": more}


# --- the officer ---------------------------------------------------------------------------------------------


async def _screening(request: Request, session: AsyncSession, case: models.Case) -> dict[str, Any]:
    actor = request.state.principal.actor
    return await screening_route.case_screening(case, actor, session, request)


@router.get("/officer", response_class=HTMLResponse)
async def officer_queue(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    mine: Annotated[bool, Query()] = False,
    closing: Annotated[bool, Query()] = False,
) -> Response:
    """The screening queue, urgent first, then the earliest deadline and the oldest, with screening suggestions;
    a page at a time, or only the cases the officer holds (``mine``). ``closing``: the cases back with the
    centre after the agency (answers to check and close, reviews to acknowledge and answer), in the same order;
    each view says how many the other holds."""
    if (refused := gate(request, principal, OFFICERS)) is not None:
        return refused
    assert principal is not None and principal.actor is not None
    state = request.app.state
    states, other = (CLOSING_STATES, QUEUE_STATES) if closing else (QUEUE_STATES, CLOSING_STATES)
    queue = await screening_queue(
        session,
        now=datetime.now(UTC),
        calendar=state.calendar,
        states=[s.value for s in states],
        held_by=principal.subject if mine and not closing else None,
        page=page,
        page_size=_QUEUE_SIZE,
    )
    others = await count_in_states(session, [s.value for s in other])
    # The whole queue's count for its tab: the page's own total is only the officer's cases when ``mine``.
    whole_queue = await count_in_states(session, [s.value for s in QUEUE_STATES]) if mine and not closing else None
    actor = principal.actor
    rows = [
        board_item_view(i, actor=actor, agencies=state.agencies, centres=state.centres, policy=state.policy)
        for i in queue.items
    ]
    # The holders of the cases on this page only (claims are kept after a case leaves the queue).
    shown = [row["case_id"] for row in rows]
    claims = (
        {row.case_id: row.officer_id for row in await session.execute(held_by(shown))} if shown and not closing else {}
    )
    # The page's cases and tasks in two statements, their screenings in one trip to a thread.
    found = await cases_with_tasks(session, shown)
    screenings = (
        {}
        if closing
        else await screening_route.screen_cases([c for c, _ in found.values()], session, request, similar=False)
    )
    for row in rows:
        case, tasks = found[row["case_id"]]
        row["subject"] = subject_of(case)
        row["screening"] = screenings.get(case.case_id)
        row["actions"] = _row_actions(request, principal, case, tasks)
        row["can_accept"] = any(a["action"] == "accept" for a in row["actions"])
        row["claimed_by"] = claims.get(case.case_id)
    pages = {
        "page": queue.page,
        "more": queue.page * queue.page_size < queue.total,
        "mine": mine and not closing,
        "closing": closing,
        "queue_total": others if closing else (whole_queue if whole_queue is not None else queue.total),
        "closing_total": queue.total if closing else others,
    }
    return render_page(
        request,
        settings,
        "officer_queue.html",
        rows=rows,
        total=queue.total,
        pages=pages,
        workload=await _workload(session),
        categories=reference_from_settings(settings).categories,
        done=done_note(request),
        wide=True,
    )


def subject_of(case: models.Case, length: int = 80) -> str:
    """A line saying what the case is about: its subject, or the start of its description."""
    return subject_line(case.subject, case.description, length)


def subject_line(subject: str | None, description: str, length: int = 80) -> str:
    """A case's subject, or the start of its description, as one line of a list."""
    if subject:
        return subject
    text = " ".join(description.split())
    return text[:length] + ("…" if len(text) > length else "")


_CASE_NUMBER = re.compile(r"[A-Za-z0-9-]{1,32}")


def done_note(request: Request) -> dict[str, str] | None:
    """What a one-click action on a list has just done (``?done=agency_accept&case=RT-...``), for the page to
    say so above the list; None for anything else."""
    action, case_id = request.query_params.get("done", ""), request.query_params.get("case", "")
    labels = EVENT_LABELS.get(action)
    if labels is None or not _CASE_NUMBER.fullmatch(case_id):
        return None
    return {"label_en": labels[0], "label_th": labels[1], "case_id": case_id}


def held_by(case_ids: Sequence[str]) -> Select[str, str]:
    """Who holds each of these cases."""
    return select(models.QueueClaim.case_id, models.QueueClaim.officer_id).where(
        models.QueueClaim.case_id.in_(case_ids)
    )


async def _workload(session: AsyncSession) -> list[tuple[str, int]]:
    """Queue cases held per officer (claims on cases that have left the queue do not count)."""
    query = (
        select(models.QueueClaim.officer_id, func.count())
        .join(models.Case, models.Case.case_id == models.QueueClaim.case_id)
        .where(models.Case.status.in_([s.value for s in QUEUE_STATES]))
        .group_by(models.QueueClaim.officer_id)
        .order_by(func.count().desc())
    )
    return [(officer, int(n)) for officer, n in (await session.execute(query)).all()]


@router.post("/officer/claim/{case_id}", response_class=HTMLResponse)
async def claim_case(case_id: Annotated[str, Path(max_length=32)], request: Request, session: SessionDep) -> Response:
    """Take a queue case (or, with ``release``, give it back): officers share the queue without working twice."""
    form = await request.form()
    principal = await form_principal(request, session, form)
    if principal.role not in OFFICERS:
        raise forbidden("Only PSC officers hold queue cases.", "เฉพาะเจ้าหน้าที่ศูนย์ฯ ที่รับงานในคิวได้", code="role_not_allowed")
    if await session.get(models.Case, case_id) is None:
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    held = await session.get(models.QueueClaim, case_id)
    if form.get("release"):
        # The holder gives a case back; a supervisor may free any (an officer who went home).
        if held is not None and (held.officer_id == principal.subject or principal.role is StaffRole.SUPERVISOR):
            await session.delete(held)
    elif held is None:
        session.add(models.QueueClaim(case_id=case_id, officer_id=principal.subject, claimed_at=datetime.now(UTC)))
    elif held.officer_id != principal.subject:
        raise conflict_claim(held.officer_id)
    await session.commit()
    return RedirectResponse(queue_view(form.get("page"), mine=bool(form.get("mine"))), status_code=303)


def queue_view(page: object, *, mine: bool) -> str:
    """The queue page a form was sent from (its page number checked, not echoed)."""
    number = int(page) if isinstance(page, str) and page.isdigit() and 1 <= int(page) <= 10_000 else 1
    query = [f"page={number}"] if number > 1 else []
    query += ["mine=1"] if mine else []
    return "/officer" + ("?" + "&".join(query) if query else "")


def conflict_claim(officer: str) -> AppError:
    return AppError(409, "already_claimed", f"{officer} already holds this case.", f"เจ้าหน้าที่ {officer} รับงานนี้ไปแล้ว")


@router.get("/officer/intake", response_class=HTMLResponse)
async def intake_page(request: Request, settings: SettingsDep, principal: OptionalPrincipal) -> Response:
    """The officer's form for complaints by hotline, at the counter or by letter."""
    if (refused := gate(request, principal, frozenset({StaffRole.OFFICER}))) is not None:
        return refused
    return render_page(
        request, settings, "officer_intake.html", keyed=True, **form_context(request, settings, None, STAFF_CHANNELS)
    )


@router.post("/officer/intake", response_class=HTMLResponse)
async def intake_form(request: Request, session: SessionDep, settings: SettingsDep, client: TemporalDep) -> Response:
    """Key the complaint in and open its case page."""
    form = await request.form()
    principal = await form_principal(request, session, form)
    if principal.role is not StaffRole.OFFICER or principal.actor is None:
        raise forbidden("Only officers key in complaints.", "เฉพาะเจ้าหน้าที่รับเรื่องที่บันทึกเรื่องได้", code="role_not_allowed")
    await release(session)  # filing takes a connection of its own
    channel = str(form.get("channel") or "")
    if channel not in STAFF_CHANNELS:
        channel = "hotline"
    filed = await submit_complaint(request, settings, client, form, channel=channel, actor=principal.actor)
    if (code := filed.code) is None:
        ctx = form_context(request, settings, form, STAFF_CHANNELS)
        return filed.form_page(request, settings, "officer_intake.html", keyed=True, **ctx)
    case = await session.scalar(select(models.Case).where(models.Case.tracking_code == code))
    target = f"/case/{case.case_id}?filed={code}" if case is not None else f"/track/{code}?new=1"
    return RedirectResponse(target, status_code=303)


def _search_terms(q: str) -> list[Any]:
    """The conditions a search matches: exact identifiers, or words in the name, subject or description."""
    digits = "".join(ch for ch in q if ch.isdigit())
    code = q.replace("-", "").replace(" ", "").upper()
    like = f"%{q}%"
    conditions: list[Any] = [
        models.Case.case_id == q,
        models.Case.tracking_code == code,
        models.Case.complainant_name.ilike(like),
        models.Case.subject.ilike(like),
        models.Case.description.ilike(like),
    ]
    if len(digits) == 13:
        conditions.append(models.Case.complainant_citizen_id == digits)
    if len(digits) >= 9:
        # Phones are stored in E.164 (+66...): match on the national number's last nine digits.
        conditions.append(cast(models.Case.complainant_phone, String).like(f"%{digits[-9:]}"))
    return conditions


@router.get("/search", response_class=HTMLResponse)
async def search_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    q: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """Find cases by tracking code, case number, citizen ID, phone, name or words (each hit is access-logged)."""
    if (refused := gate(request, principal, SEARCHERS)) is not None:
        return refused
    q = q.strip()
    found: list[models.Case] = []
    if len(q) >= 2:
        rows = await session.scalars(
            select(models.Case).where(or_(*_search_terms(q))).order_by(models.Case.received_at.desc()).limit(50)
        )
        found = list(rows)
        for case in found:
            await log_read(session, request, case_id=case.case_id, what="search")
        await session.commit()
    # What each case is about, as the lists show it: a caller with several complaints is asking about one.
    results = [
        {
            "case": case,
            "category": case.category,
            "subject": subject_of(case),
            **classification_view(kind=case.kind, priority=case.priority, centre=case.centre, citizen=True),
        }
        for case in found
    ]
    return render_page(
        request,
        settings,
        "search.html",
        q=q,
        results=results,
        categories=reference_from_settings(settings).categories,
        searched=len(q) >= 2,
        wide=True,
    )


# --- the agency -------------------------------------------------------------------------------------------------


INBOX_PAGE = 25  # tasks a page of the agency's inbox (each row reads its case's allowed actions)


@router.get("/agency", response_class=HTMLResponse)
async def agency_inbox(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The agency's open tasks, most urgent first, with working days left and one-click actions, a page at a
    time (an agency with hundreds of open tasks saw the first hundred, and no way to the rest)."""
    if (refused := gate(request, principal, AGENCY_STAFF)) is not None:
        return refused
    assert principal is not None and principal.agency is not None
    board = await _board(request, session, principal, agency=principal.agency, page=page, page_size=INBOX_PAGE)
    found = await cases_with_tasks(session, [row["case_id"] for row in board["items"]])
    for row in board["items"]:
        row["days_left"] = _days_left(request, row["due_at"])
        case, tasks = found[row["case_id"]]
        row["actions"] = _row_actions(request, principal, case, tasks)
        row["subject"] = subject_of(case)
    agency = request.app.state.agencies.get(principal.agency)
    categories = reference_from_settings(settings).categories
    return render_page(
        request,
        settings,
        "agency_inbox.html",
        board=board,
        agency=agency,
        categories=categories,
        done=done_note(request),
        wide=True,
    )


# --- the staff messages ---------------------------------------------------------------------------------------


MESSAGE_READERS = frozenset({*OFFICERS, *AGENCY_STAFF})
MESSAGES_PAGE = 25


@router.get("/messages", response_class=HTMLResponse)
async def staff_messages(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The messages every step sends to the user's agency (agency staff) or to the centre's supervisors (officers
    and supervisors), newest first: the web copy of each, whether or not it also went out by email."""
    if (refused := gate(request, principal, MESSAGE_READERS)) is not None:
        return refused
    assert principal is not None and principal.actor is not None
    lang = page_lang(request)
    inbox = await inbox_route.staff_inbox(
        principal.actor, session, settings, request, "en" if lang == "en" else "th", page, MESSAGES_PAGE
    )
    return render_page(request, settings, "staff_messages.html", inbox=inbox, wide=True)


# --- the case page --------------------------------------------------------------------------------------------


async def _readable_case(session: AsyncSession, principal: Principal, case_id: str) -> models.Case:
    case = await session.get(models.Case, case_id)
    actor = principal.actor
    if case is None or actor is None or (actor.role is Role.AGENCY and actor.agency not in (case.agencies or [])):
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    return case


async def _case_page(
    request: Request,
    session: AsyncSession,
    settings: Any,
    principal: Principal,
    case: models.Case,
    *,
    status: int = 200,
    problems: list[Problem] | None = None,
) -> Response:
    actor = principal.actor
    assert actor is not None
    view = await cases_route.render(session, case, actor, request)
    await session.commit()
    screening = None
    if principal.role in OFFICERS and case.status in QUEUE_STATES:
        screening = await _screening(request, session, case)
    # The screening's suggestions fill the action forms in (the officer can still change them).
    prefill = {
        ready["action"]: {k: " ".join(v) if isinstance(v, list) else v for k, v in ready["data"].items()}
        for ready in (screening or {}).get("actions", [])
    }
    if any(a["action"] == "respond_stage2" for a in view["allowed_actions"]):
        prefill["respond_stage2"] = _final_answer_draft(
            view["timeline"], request.app.state.agencies, page_lang(request)
        )
    tasks, _ = await tasks_and_context(session, case, request)
    if pending := [t.agency for t in tasks if t.extension_pending > 0]:
        # The supervisor answers the request that waits (the first, if several agencies asked).
        for event in ("approve_extension", "refuse_extension"):
            prefill[event] = {"agency": pending[0]}
    path = [e["state"] for e in view["timeline"]]
    diagram = process_svg(visited=path, current=case.status, lang=page_lang(request))
    return render_page(
        request,
        settings,
        "case.html",
        status,
        case=view,
        screening=screening,
        prefill=prefill,
        diagram=diagram,
        problems=problems,
        done=request.query_params.get("done"),
        filed=request.query_params.get("filed"),
        can_act=principal.role is not StaffRole.AUDITOR,
        agency_codes=sorted(request.app.state.agencies),
        agencies=request.app.state.agencies,
        categories=reference_from_settings(settings).categories,
        codes=code_choices(request, settings),
        wide=True,
    )


def _final_answer_draft(timeline: list[dict[str, Any]], agencies: dict[str, Any], lang: str) -> dict[str, str]:
    """The review's final answer, drafted from what the investigating agencies reported (their findings as the
    answer, their root causes and actions as such), each under the agency's name when there are several: the
    officer edits it into the centre's answer instead of copying it across by hand."""
    reports = [e for e in timeline if e["event"] == "report_findings" and e.get("data")]

    def joined(field: str) -> str:
        parts = []
        for e in reports:
            text = str(e["data"].get(field) or "").strip()
            if not text:
                continue
            if len(reports) > 1:
                code = e["actor"].get("agency") or ""
                agency = agencies.get(code)
                text = f"{getattr(agency, f'name_{lang}', code) if agency else code}: {text}"
            parts.append(text)
        return "\n\n".join(parts)

    draft = {"response": joined("findings"), "root_cause": joined("root_cause"), "action_taken": joined("action_taken")}
    return {field: text for field, text in draft.items() if text}


def code_choices(request: Request, settings: Settings) -> dict[str, list[Any]]:
    """What a field of codes on the case page offers, by field, so nobody types a code from a file they cannot
    see: the receiving centres and the SLA classes as (code, Thai, English), the categories in their groups
    as (Thai, English, [(code, Thai, English), ...])."""
    state = request.app.state
    return {
        "category": [
            (g["name_th"], g["name_en"], [(c["code"], c["name_th"], c["name_en"]) for c in g["categories"]])
            for g in category_groups(request, settings)
        ],
        "centre": [(c.code, c.name_th, c.name_en) for c in state.centres.by_code.values()],
        "sla_class": [(code, c.name_th, c.name_en) for code, c in state.policy.classes.items()],
    }


@router.get("/cases/{case_id}")
async def old_case_link(case_id: Annotated[str, Path(max_length=32)]) -> RedirectResponse:
    """Where staff messages sent before the case link was right point: the case page."""
    return RedirectResponse(f"/case/{quote(case_id, safe='')}", status_code=303)


@router.get("/case/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: Annotated[str, Path(max_length=32)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
) -> Response:
    """One case for staff: facts, complainant (hidden from agencies if confidential), timeline, actions, diagram."""
    if (refused := gate(request, principal, CASE_READERS)) is not None:
        return refused
    assert principal is not None
    case = await _readable_case(session, principal, case_id)
    return await _case_page(request, session, settings, principal, case)


@router.post("/case/{case_id}/act/{action}", response_class=HTMLResponse)
async def case_action(
    case_id: Annotated[str, Path(max_length=32)],
    action: Annotated[str, Path(max_length=32)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
) -> Response:
    """Run one action of the process table on the case (the same service as POST /api/v1/cases/{id}/actions)."""
    form = await request.form()
    principal = await form_principal(request, session, form)
    if principal.actor is None or principal.role is StaffRole.AUDITOR:
        raise forbidden(
            "Auditors read cases; they never act on them.", "ผู้ตรวจสอบอ่านข้อมูลเรื่องได้เท่านั้น", code="role_not_allowed"
        )
    case = await _readable_case(session, principal, case_id)
    _, ctx = await tasks_and_context(session, case, request)
    allowed = find_action(allowed_actions_view(case, ctx, principal.actor), action)
    body = action_body(allowed["fields"] if allowed else [], form)
    refused, status = await act_from_page(
        case=case,
        action=action,
        actor=principal.actor,
        body=body,
        session=session,
        client=client,
        request=request,
    )
    if refused:
        await session.refresh(case)
        return await _case_page(request, session, settings, principal, case, status=status, problems=refused)
    back = str(form.get("back") or "")
    if back in {"/officer", "/agency", "/board"}:
        return RedirectResponse(f"{back}?done={action}&case={case.case_id}", status_code=303)
    return RedirectResponse(f"/case/{case.case_id}?done={action}", status_code=303)

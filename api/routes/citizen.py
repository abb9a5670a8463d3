"""The citizen's pages: file a complaint, track it with the tracking code, answer, rate, ask for a review,
withdraw. No sign-in: the tracking code is the key, and these pages never show the complainant's personal data
(the tracking view has none), so a guessed code reveals no one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote

import geothai
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from api.casework import case_by_code
from api.console import Problem, act_from_page, action_body, check_csrf, find_action, problems_of
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import AppError, database_away
from api.limits import limit
from api.routes import inbox as inbox_route
from api.routes.attachments import storage_of
from api.routes.pages import page_lang, render_page
from api.routes.public import _tracking
from api.schemas import ComplaintIn
from api.service import file_complaint
from api.views import area_name, in_reading_order, province_choices
from attachments.intake import complete, file_with_files
from attachments.service import read_uploads
from config.settings import Settings
from domain.complaint import Channel, NotifyChannel
from intake.idempotency import Idempotency
from screening.service import reference_from_settings
from store.db import is_database_unavailable
from workflows.process import Actor, Role

router = APIRouter(tags=["pages"], include_in_schema=False)

CITIZEN_CHANNELS = ("web",)
STAFF_CHANNELS = ("hotline", "walk_in", "letter")


@cache
def places(lang: str = "th") -> list[dict[str, Any]]:
    """Provinces with their districts (geothai, CC-BY-4.0), for the pickers, each list in the reader's order."""
    return [
        {
            "code": p.code,
            "name_th": p.name_th,
            "name_en": p.name_en,
            "districts": [
                {"code": d.code, "name_th": d.name_th, "name_en": d.name_en}
                for d in in_reading_order(geothai.districts(p.code), lambda d: area_name(d, lang), lang)
            ],
        }
        for p in province_choices(lang)
    ]


def category_groups(request: Request, settings: Settings) -> list[dict[str, Any]]:
    """The complaint categories by group, as the reference data lists them (loaded once per app)."""
    groups = getattr(request.app.state, "category_groups", None)
    if groups is None:
        reference = reference_from_settings(settings)
        by_group: dict[str, dict[str, Any]] = {}
        for c in reference.categories.values():
            group = by_group.setdefault(
                c.group, {"code": c.group, "name_th": c.group_name_th, "name_en": c.group_name_en, "categories": []}
            )
            group["categories"].append({"code": c.code, "name_th": c.name_th, "name_en": c.name_en})
        groups = request.app.state.category_groups = list(by_group.values())
    return list(groups)


def complaint_from_form(form: FormData, *, channel: str) -> dict[str, Any]:
    """The JSON body of POST /api/v1/complaints from the filing form (the model validates it)."""

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    location = {
        "province_code": text("province_code"),
        "district_code": text("district_code"),
        "address": text("address"),
    }
    complainant = {
        "name": text("name"),
        "citizen_id": text("citizen_id"),
        "phone": text("phone"),
        "email": text("email"),
        "preferred_channels": [str(c) for c in form.getlist("preferred_channels")] or ["web"],
        "confidential": form.get("confidential") == "on",
    }
    body: dict[str, Any] = {
        "channel": channel,
        "description": text("description") or "",
        "subject": text("subject"),
        "category": text("category"),
        "occurred_on": text("occurred_on"),
        "complainant": {k: v for k, v in complainant.items() if v is not None},
        "location": {k: v for k, v in location.items() if v is not None} or None,
    }
    return {k: v for k, v in body.items() if v is not None}


def form_context(
    request: Request, settings: Settings, form: FormData | None, channels: tuple[str, ...]
) -> dict[str, Any]:
    values = {k: v for k, v in (form or {}).items() if isinstance(v, str)}
    chosen = [str(c) for c in form.getlist("preferred_channels")] if form else ["web"]
    return {
        "form_key": _form_key(form) or uuid.uuid4().hex,
        "places": places(page_lang(request)),
        "groups": category_groups(request, settings),
        "notify_channels": [c.value for c in NotifyChannel],
        "channels": channels,
        "values": values,
        "chosen_channels": chosen,
    }


@dataclass(frozen=True)
class Submitted:
    """What filing a form's complaint came to: its tracking code, or the problems to show with the form kept
    as typed, and the page's status (422 for what the writer can correct; 503 with Retry-After when the service
    could not take it now, so that nothing typed is lost to an error page)."""

    code: str | None
    problems: list[Problem]
    status: int = 422
    headers: dict[str, str] = field(default_factory=dict)

    def form_page(self, request: Request, settings: Settings, template: str, **context: Any) -> Response:
        page = render_page(request, settings, template, self.status, problems=self.problems, **context)
        page.headers.update(self.headers)
        return page


def _refused(exc: AppError) -> Submitted:
    status = exc.status if exc.status >= 500 else 422
    return Submitted(None, problems_of(exc), status, exc.headers if status >= 500 else {})


def _form_key(form: FormData | None) -> str | None:
    """The form's own key (``form_key``, made when the form was drawn and kept when it is shown again), if it is
    one that could have been made: 32 hexadecimal digits."""
    key = form.get("form_key") if form else None
    return key if isinstance(key, str) and _FORM_KEY.fullmatch(key) else None


_FORM_KEY = re.compile(r"[0-9a-f]{32}")


async def submit_complaint(
    request: Request, settings: Settings, client: Any, form: FormData, *, channel: str, actor: Actor
) -> Submitted:
    """File the form's complaint through the intake service: the tracking code, or the problems to show.

    The form's key is the filing's Idempotency-Key (scoped to the form and who sends it): the same form sent
    twice, by a double tap or again after "could not confirm", files one complaint and answers with its code.
    A form changed after it was filed is another complaint, and is filed under a new key."""
    try:
        complaint = ComplaintIn.model_validate(complaint_from_form(form, channel=channel))
    except ValidationError as exc:
        return Submitted(None, problems_of(exc))
    key = _form_key(form)
    try:
        return await _file_form(request, settings, form, complaint, actor, key)
    except AppError as exc:
        if exc.code != "idempotency_key_reused":
            raise
        return await _file_form(request, settings, form, complaint, actor, uuid.uuid4().hex)


async def _file_form(
    request: Request, settings: Settings, form: FormData, complaint: ComplaintIn, actor: Actor, key: str | None
) -> Submitted:
    idempotency = Idempotency(scope=f"form:{actor.id}"[:80], key=key) if key else None
    uploads = [f for f in form.getlist("photos") if isinstance(f, UploadFile) and (f.filename or f.size)]
    try:
        if not uploads:
            answer = await file_complaint(
                request.app.state.intake, complaint=complaint, actor=actor, idempotency=idempotency
            )
            return Submitted(str(answer.body["tracking_code"]), [])
        # Photos or PDFs with the complaint: checked by their bytes, stored, referred to by the complaint (a
        # photo's GPS may become its place), and recorded as the complainant's own files (attachments/).
        files = await read_uploads(uploads, settings)
        completed = ComplaintIn.model_validate(complete(complaint, files, settings))
        citizen = Actor(id=f"citizen:{complaint.channel.value}", role=Role.CITIZEN)
        filed = await file_with_files(
            request.app.state.intake,
            storage=storage_of(request),
            complaint=completed,
            files=files,
            actor=actor,
            owner=citizen if actor.role is not Role.CITIZEN else actor,
            public=True,
            idempotency=idempotency,
        )
    except ValidationError as exc:
        return Submitted(None, problems_of(exc))
    except AppError as exc:
        if exc.code == "idempotency_key_reused":
            raise
        return _refused(exc)
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return _refused(database_away(request, exc, form=key is not None))
    return Submitted(filed.tracking_code, [])


@router.get("/file", response_class=HTMLResponse)
async def file_page(request: Request, settings: SettingsDep) -> Response:
    """The complaint form (phone first)."""
    return render_page(
        request, settings, "citizen_file.html", **form_context(request, settings, None, CITIZEN_CHANNELS)
    )


@router.post("/file", response_class=HTMLResponse, dependencies=[Depends(limit("intake"))])
async def file_form(request: Request, settings: SettingsDep, client: TemporalDep) -> Response:
    """File the complaint and show the receipt (the tracking page). Always as a citizen on the web: staff key
    complaints in at /officer/intake."""
    form = await request.form()
    check_csrf(request, form)
    filer = Actor(id="citizen:web", role=Role.CITIZEN)
    filed = await submit_complaint(request, settings, client, form, channel=Channel.web.value, actor=filer)
    if filed.code is None:
        ctx = form_context(request, settings, form, CITIZEN_CHANNELS)
        return filed.form_page(request, settings, "citizen_file.html", **ctx)
    return RedirectResponse(f"/track/{filed.code}?new=1", status_code=303)


@router.get("/track", response_class=HTMLResponse)
async def track_lookup(request: Request, settings: SettingsDep, code: str | None = None) -> Response:
    """Find a case by its tracking code."""
    if code and code.strip():
        return RedirectResponse(f"/track/{quote(code.strip()[:32], safe='')}", status_code=303)
    return render_page(request, settings, "citizen_track_lookup.html")


async def _track_context(request: Request, session: Any, settings: Settings, code: str) -> dict[str, Any]:
    case = await case_by_code(session, code)
    view = await _tracking(session, case, request)
    english = request.query_params.get("lang", request.cookies.get("rongtuk_lang")) == "en"
    messages = await inbox_route.inbox(case.tracking_code, session, settings, request, "en" if english else "th")
    return {"case": view, "messages": messages.messages}


@router.get("/track/{code}/rate", dependencies=[Depends(limit("tracking"))])
async def rate_link(code: Annotated[str, Path(max_length=32)]) -> RedirectResponse:
    """Where messages sent before the rating link was right point: the tracking page's rating form."""
    return RedirectResponse(f"/track/{quote(code, safe='')}#form-rate", status_code=303)


@router.get("/track/{code}", response_class=HTMLResponse, dependencies=[Depends(limit("tracking"))])
async def track_page(
    code: Annotated[str, Path(max_length=32)], request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Where the case stands, its public timeline, the messages sent about it, and what the citizen may do."""
    try:
        ctx = await _track_context(request, session, settings, code)
    except AppError as exc:
        return render_page(request, settings, "citizen_track_lookup.html", exc.status, problems=problems_of(exc))
    return render_page(
        request,
        settings,
        "citizen_track.html",
        new=request.query_params.get("new") == "1",
        done=request.query_params.get("done"),
        **ctx,
    )


@router.post("/track/{code}/act/{action}", response_class=HTMLResponse, dependencies=[Depends(limit("citizen_action"))])
async def track_action(
    code: Annotated[str, Path(max_length=32)],
    action: Annotated[str, Path(max_length=32)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
) -> Response:
    """The complainant's action from the tracking page (reply, rate, request_review, withdraw)."""
    form = await request.form()
    check_csrf(request, form)
    case = await case_by_code(session, code)
    ctx = await _track_context(request, session, settings, code)
    allowed = find_action(ctx["case"]["allowed_actions"], action)
    body = action_body(allowed["fields"] if allowed else [], form)
    actor = Actor(id=f"citizen:{case.tracking_code}", role=Role.CITIZEN)
    refused, status = await act_from_page(
        case=case,
        action=action,
        actor=actor,
        body=body,
        session=session,
        client=client,
        request=request,
    )
    if refused:
        return render_page(request, settings, "citizen_track.html", status, problems=refused, failed=action, **ctx)
    return RedirectResponse(f"/track/{case.tracking_code}?done={action}", status_code=303)

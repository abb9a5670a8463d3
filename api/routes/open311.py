"""Open311 GeoReport v2 at ``/open311/v2/``, for the civic apps that already speak it (JSON and XML).

Errors take the spec's shape (``[{"code": ..., "description": ...}]`` or ``<errors>``) with the spec's
statuses where it names one (400 missing parameter, 403 api_key, 404 unknown jurisdiction, service or
request) and 422 for values that are not valid; descriptions are in English and Thai. Posting needs an
``api_key`` of a client registered in the settings (``open311_api_keys``); reading is public and shows no
personal data (channels/open311.py).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import Select, select

from api.errors import AppError
from api.limits import RateLimiter, check_limit, too_many_requests
from api.middleware import control_character_path
from api.views import BANGKOK
from channels import open311
from channels.open311 import Format, Invalid, Locale, Open311Error
from config.reference import ReferenceData, load_reference
from config.settings import Settings
from intake.idempotency import idempotency_of
from intake_channels.filing import file
from store import models
from workflows.process import Actor, Role

router = APIRouter(prefix="/open311/v2", tags=["open311"])

_MAX_RESULTS = 1000  # the spec's ceiling for one GET requests
_DEFAULT_WINDOW = timedelta(days=90)  # the spec's default when no dates are given
_MAX_IDS = 100
_MEDIA = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
_BOTH: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {}, "text/xml": {}}}}
_FORM = {"requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}}}


def _respond(
    fmt: Format, root: str, value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    if fmt == "json":
        body = json.dumps(value, ensure_ascii=False).encode()
    else:
        body = open311.to_xml(root, value)
    return Response(body, status_code=status, media_type=_MEDIA[fmt], headers=dict(headers or {}))


def _errors(
    fmt: Format, status: int, descriptions: Sequence[str], headers: Mapping[str, str] | None = None
) -> Response:
    return _respond(fmt, "errors", [{"code": status, "description": d} for d in descriptions], status, headers)


def _format(ending: str) -> Format:
    if ending not in ("json", "xml"):
        raise Open311Error(404, "Unknown format: end the path with .json or .xml. / ต้องลงท้ายด้วย .json หรือ .xml")
    return "json" if ending == "json" else "xml"


async def _guard(ending: str, run: Callable[[Format], Awaitable[Response]]) -> Response:
    """Answer every failure in the spec's error shape, in the format the client asked for."""
    fmt: Format = "xml" if ending == "xml" else "json"
    try:
        return await run(_format(ending))
    except Open311Error as exc:
        return _errors(fmt, exc.status, [exc.description])
    except Invalid as exc:
        return _errors(fmt, 422, exc.descriptions)
    except AppError as exc:
        return _errors(fmt, exc.status, [f"{exc.message} / {exc.message_th}"], exc.headers)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _reference(settings: Settings) -> ReferenceData:
    return load_reference(
        categories_file=settings.categories_file,
        agencies_file=settings.agencies_file,
        regions_file=settings.regions_file,
    )


def _locale(params: Mapping[str, str]) -> Locale:
    return "en" if (params.get("locale") or "").lower().startswith("en") else "th"


def _check_jurisdiction(settings: Settings, params: Mapping[str, str]) -> None:
    given = params.get("jurisdiction_id")
    if given and given != settings.open311_jurisdiction_id:
        raise Open311Error(404, "jurisdiction_id not found. / ไม่พบ jurisdiction_id นี้")


def _client(settings: Settings, api_key: str | None) -> str | None:
    """The registered client whose key this is; without one, 403 (None when keys are switched off)."""
    given = (api_key or "").encode()
    for name, key in settings.open311_api_keys.items():
        if given and hmac.compare_digest(given, key.encode()):
            return name
    if settings.open311_require_api_key:
        raise Open311Error(403, "api_key is missing or not valid. / ไม่มี api_key หรือ api_key ไม่ถูกต้อง")
    return None


def _limit_poster(request: Request, settings: Settings, client: str | None) -> None:
    """A registered client has its own limit (it posts for many people from one address); others the intake's."""
    if client is None:
        check_limit(request, "intake")
        return
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.check("open311_client", client, settings.rate_open311_client_per_minute)
    if wait is not None:
        raise too_many_requests(wait)


# --- discovery and services ----------------------------------------------------------------------------


@router.get("/discovery.{ending}", response_class=Response, responses=_BOTH)
async def discovery(ending: str, request: Request) -> Response:
    """Where this Open311 endpoint is and what it speaks."""

    async def run(fmt: Format) -> Response:
        settings = _settings(request)
        value = {
            "changeset": open311.CHANGESET,
            "contact": "Rongtuk complaint centre",
            "key_service": "Ask the complaint centre for an api_key to post requests.",
            "endpoints": [
                {
                    "specification": open311.SPEC_URL,
                    "url": settings.public_base_url.rstrip("/") + router.prefix,
                    "changeset": open311.CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }
        return _respond(fmt, "discovery", value)

    return await _guard(ending, run)


@router.get("/services.{ending}", response_class=Response, responses=_BOTH)
async def services(ending: str, request: Request) -> Response:
    """Service list: one service per complaint category."""

    async def run(fmt: Format) -> Response:
        settings = _settings(request)
        _check_jurisdiction(settings, request.query_params)
        return _respond(fmt, "services", open311.services(_reference(settings), _locale(request.query_params)))

    return await _guard(ending, run)


@router.get("/services/{name}", response_class=Response, responses=_BOTH)
async def service_definition(name: str, request: Request) -> Response:
    """Service definition: the category's fields as attributes (``services/roads.pothole.json``)."""
    code, _, ending = name.rpartition(".")

    async def run(fmt: Format) -> Response:
        settings = _settings(request)
        _check_jurisdiction(settings, request.query_params)
        reference = _reference(settings)
        category = reference.categories.get(code)
        if category is None:
            raise Open311Error(404, "service_code not found. / ไม่พบประเภทบริการนี้")
        value = open311.service_definition(category, reference, _locale(request.query_params))
        return _respond(fmt, "service_definition", value)

    return await _guard(ending, run)


# --- requests ------------------------------------------------------------------------------------------


def _notice(code: str, expected: str | None) -> str:
    if expected:
        return (
            f"Tracking code {code}; expected answer by {expected}. รหัสติดตาม {code} คาดว่าจะได้รับคำตอบภายในวันที่ {expected}"
        )
    return f"Tracking code {code}. รหัสติดตาม {code}"


@router.post("/requests.{ending}", response_class=Response, responses=_BOTH, openapi_extra=_FORM)
async def post_request(ending: str, request: Request) -> Response:
    """Create a service request (form-encoded, ``attribute[code]=...``); answers with its id or a token."""

    async def run(fmt: Format) -> Response:
        settings = _settings(request)
        form = await request.form()
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        params = dict(items)
        if control_character_path(params) is not None:
            raise Invalid(("A parameter contains control characters. / มีอักขระควบคุมในข้อมูลที่ส่งมา",))
        _check_jurisdiction(settings, params)
        try:
            client = _client(settings, params.get("api_key"))
        except Open311Error:
            check_limit(request, "intake")  # a guessed key costs like any intake from that address
            raise
        _limit_poster(request, settings, client)
        code = (params.get("service_code") or "").strip()
        if not code:
            raise Open311Error(400, "service_code was not provided. / ไม่ได้ระบุ service_code")
        if code not in _reference(settings).categories:
            raise Open311Error(404, "service_code not found. / ไม่พบประเภทบริการนี้")
        complaint = open311.complaint_from_form(params, open311.attributes_of(items))
        poster = Actor(id=f"open311:{client or 'public'}", role=Role.CITIZEN)
        filed = await file(
            request.app.state.intake,
            complaint=complaint,
            actor=poster,
            idempotency=idempotency_of(poster.id, request.headers.get("Idempotency-Key")),
        )
        expected = filed.expected_by.isoformat() if filed.expected_by else None
        # Intake is DB-first: the case number is known at once, so the answer never needs a token.
        answer: dict[str, Any] = {
            "service_request_id": filed.case_id,
            "service_notice": _notice(filed.tracking_code, expected),
            "account_id": None,
        }
        return _respond(fmt, "service_requests", [answer])

    return await _guard(ending, run)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _moment(params: Mapping[str, str], key: str) -> datetime | None:
    raw = (params.get(key) or "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(
            (f"{key}: must be a W3C date-time such as 2026-12-01T00:00:00+07:00. / รูปแบบวันเวลาไม่ถูกต้อง",)
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=BANGKOK)


def _requests_query(params: Mapping[str, str]) -> Select[Any]:
    """The spec's filters; ``service_request_id`` overrides the others. Confidential cases never show."""
    query = select(models.Case).where(models.Case.confidential.is_(False))
    ids = _split(params.get("service_request_id"))
    if ids:
        return query.where(models.Case.case_id.in_(ids[:_MAX_IDS])).order_by(models.Case.received_at.desc())
    codes = _split(params.get("service_code"))
    if codes:
        query = query.where(models.Case.category.in_(codes))
    start, end = _moment(params, "start_date"), _moment(params, "end_date")
    if start is None and end is None:
        start = datetime.now(UTC) - _DEFAULT_WINDOW
    if start is not None:
        query = query.where(models.Case.received_at >= start)
    if end is not None:
        query = query.where(models.Case.received_at <= end)
    statuses = set(_split(params.get("status")))
    if statuses - {"open", "closed"}:
        raise Invalid(("status: must be open, closed or both (comma-separated). / status ต้องเป็น open หรือ closed",))
    if statuses == {"open"}:
        query = query.where(models.Case.status.in_(open311.open_states()))
    elif statuses == {"closed"}:
        query = query.where(models.Case.status.not_in(open311.open_states()))
    return query.order_by(models.Case.received_at.desc()).limit(_MAX_RESULTS)


async def _listed(request: Request, query: Select[Any]) -> list[dict[str, Any]]:
    settings = _settings(request)
    async with request.app.state.db.sessions() as session:
        cases = list((await session.execute(query)).scalars())
    reference, agencies = _reference(settings), request.app.state.agencies
    locale = _locale(request.query_params)
    return [open311.service_request(c, reference=reference, agencies=agencies, locale=locale) for c in cases]


@router.get("/requests.{ending}", response_class=Response, responses=_BOTH)
async def get_requests(ending: str, request: Request) -> Response:
    """Service requests, filtered by service_request_id, service_code, start_date, end_date and status."""

    async def run(fmt: Format) -> Response:
        check_limit(request, "tracking")
        _check_jurisdiction(_settings(request), request.query_params)
        return _respond(fmt, "service_requests", await _listed(request, _requests_query(request.query_params)))

    return await _guard(ending, run)


@router.get("/requests/{name}", response_class=Response, responses=_BOTH)
async def get_request(name: str, request: Request) -> Response:
    """One service request by its id (``requests/RT-20261201-7KQ2MX.json``)."""
    case_id, _, ending = name.rpartition(".")

    async def run(fmt: Format) -> Response:
        check_limit(request, "tracking")
        _check_jurisdiction(_settings(request), request.query_params)
        query = select(models.Case).where(models.Case.case_id == case_id, models.Case.confidential.is_(False))
        found = await _listed(request, query)
        if not found:
            raise Open311Error(404, "service_request_id not found. / ไม่พบเรื่องนี้")
        return _respond(fmt, "service_requests", found)

    return await _guard(ending, run)


@router.get("/tokens/{name}", response_class=Response, responses=_BOTH)
async def get_token(name: str, request: Request) -> Response:
    """The service_request_id a token from POST requests became (404 while it is still being filed)."""
    token, _, ending = name.rpartition(".")

    async def run(fmt: Format) -> Response:
        check_limit(request, "tracking")
        _check_jurisdiction(_settings(request), request.query_params)
        async with request.app.state.db.sessions() as session:
            case = await session.get(models.Case, token) if token else None
        if case is None:
            raise Open311Error(404, "token not found (yet): try again shortly. / ยังไม่พบ token นี้ โปรดลองใหม่ภายหลัง")
        return _respond(fmt, "service_requests", [{"service_request_id": case.case_id, "token": token}])

    return await _guard(ending, run)

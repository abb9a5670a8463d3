"""Server-rendered pages: the Thai login page (English on request), the signed-in home, and the API docs.

The session is an opaque random cookie (HttpOnly, SameSite=Lax, Secure in prod) stored hashed like a refresh
token, so signing out revokes it. Forms carry a CSRF token that must equal the ``rongtuk_csrf`` cookie
(double submit): another site can make a browser post, but cannot read the cookie to copy it into the form.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.auth import SESSION, StaffRole, new_token, sign_in, token_digest
from api.deps import CSRF_COOKIE, SESSION_COOKIE, OptionalPrincipal, SessionDep, SettingsDep
from api.errors import AppError, ErrorBody, forbidden, not_found, unauthorized
from api.limits import limit
from api.ui_text import CONSOLE_TEXTS
from api.views import BANGKOK, expected_date, place_words
from config.settings import Access, Settings
from delivery.templates import THAI_MONTHS
from store import users
from workflows.process import STATE_LABELS, State, action_words

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
LANG_COOKIE = "rongtuk_lang"
MIDNIGHT = clock_time(0)


def _moment(value: Any, lang: str = "th", *, time: bool = True, seconds: bool = False) -> str:
    """A date or ISO timestamp as people read it: Thai months and Buddhist years in Thai, Bangkok time (to the
    second with ``seconds``, for a record read step by step)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        value = value.astimezone(BANGKOK)
        clock = (f" {value:%H:%M:%S}" if seconds else f" {value:%H:%M}") if time else ""
    else:
        clock = ""
    if lang == "th":
        return f"{value.day} {THAI_MONTHS[value.month - 1]} {value.year + 543}{clock}"
    return f"{value.day} {value:%b} {value.year}{clock}"


def _deadline(value: Any, lang: str = "th") -> str:
    """A deadline as people read it. A working-day deadline is the midnight that ends its last day: shown as
    that day ("by 11 Dec"), not as 00:00 of the next, which reads as a day more than there is. Any other
    moment keeps its time."""
    moment = value
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):  # not a time: _moment shows it as it is
            moment = datetime.fromisoformat(value)
    if isinstance(moment, datetime) and moment.astimezone(BANGKOK).time() == MIDNIGHT:
        day = _moment(expected_date(moment), lang, time=False)
        return f"ภายใน {day}" if lang == "th" else f"by end of {day}"
    return _moment(value, lang)


def _state(code: str | None, lang: str = "th") -> str:
    """A case status code by its name."""
    if code is None:
        return "-"
    try:
        en, th = STATE_LABELS[State(code)]
    except ValueError:
        return code
    return th if lang == "th" else en


_DATES = frozenset({"expected_by", "occurred_on", "ombudsman_until"})
_CHOICES = frozenset({"kind", "priority", "outcome"})
_UNSAID = frozenset({"label"})  # the notification's own heading: the timeline entry's title already says it


def said(
    data: dict[str, Any] | None,
    lang: str = "th",
    agencies: Any = None,
    categories: Any = None,
    codes: dict[str, list[Any]] | None = None,
) -> list[tuple[str, str]]:
    """What a timeline entry recorded, as (field, value) lines people read: every code by its name (channel,
    agency, category, outcome, kind, priority, deadline, and the fields of ``codes``), dates as dates, yes or no
    for flags. ``agencies`` and ``categories`` map codes to objects with ``name_th``/``name_en``; ``codes`` is
    the case page's choices by field, (code, Thai, English) (the receiving centre, the SLA class); a code they
    do not know stays a code."""
    words = CONSOLE_TEXTS[lang]
    choices = {
        field: {c[0]: c[1] if lang == "th" else c[2] for c in listed if isinstance(c[2], str)}
        for field, listed in (codes or {}).items()
    }

    def named(objects: Any, code: str) -> str:
        found = (objects or {}).get(code)
        return str(getattr(found, f"name_{lang}", None) or code)

    def value_of(key: str, value: Any) -> str:
        if isinstance(value, bool):
            return str(words["yes"] if value else words["no"])
        if isinstance(value, list | tuple):
            return ", ".join(value_of(key, v) for v in value)
        if isinstance(value, dict):  # e.g. a reclassification's "before" and "after": each field by its name
            return ", ".join(f"{words['fields'].get(k, k)}: {value_of(k, v)}" for k, v in value.items())
        text = str(value)
        if key == "channel":
            return str(words["channel_labels"].get(text, text))
        if key in {"agency", "agencies", "investigating"}:
            return named(agencies, text)
        if key == "category":
            return named(categories, text)
        if key in _CHOICES:
            return str(words["choices"].get(text, text))
        if key in choices:
            return str(choices[key].get(text, text))
        if key == "rule":
            return str(words["deadline_rule"].get(text, text))
        if key == "due_at":
            return _deadline(text, lang)
        if key in _DATES:
            try:
                return _moment(date.fromisoformat(text), lang, time=False)
            except ValueError:
                return text
        if key == "confidence" and isinstance(value, float):
            return f"{round(value * 100)}%"
        return text

    return [
        (str(words["fields"].get(key, key)), value_of(key, value))
        for key, value in (data or {}).items()
        if key not in _UNSAID and value not in (None, "", [])
    ]


def _phone(number: str | None) -> str:
    """A stored E.164 number as people dial it: Thai numbers in the national form (081 234 5678), others in
    the international one; anything unparsable as it was."""
    if not number:
        return "-"
    try:
        parsed = phonenumbers.parse(number, "TH")
    except phonenumbers.NumberParseException:
        return number
    form = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(parsed, form.NATIONAL if parsed.country_code == 66 else form.INTERNATIONAL)


def field_label(path: str, words: dict[str, Any]) -> str:
    """What a form calls the field an error is about ("complainant.phone": "Phone", "location.province_code":
    "Province", an action's "reason": "Reason"), from the page's words; the path itself when they have none."""
    key = path.rsplit(".", 1)[-1]
    for candidate in (key, key.removesuffix("_code")):
        for table in (words, words.get("fields") or {}):
            label = table.get(candidate)
            if isinstance(label, str):
                return label
    return path


def _action(code: str, lang: str = "th") -> str:
    """An action by its button's words (the access log's ``action:<code>``); its code if no button has it."""
    en, th = action_words(code)
    return th if lang == "th" else en


def _count(total: int, exact: bool = True) -> str:
    """How many a list holds, with thousands separated; "10,000+" when the list stopped counting at its cap."""
    return f"{total:,}" + ("" if exact else "+")


templates.env.filters["said"] = said
templates.env.filters["count"] = _count
templates.env.filters["field_label"] = field_label
templates.env.filters["phone"] = _phone
templates.env.filters["when"] = _moment
templates.env.filters["day"] = lambda value, lang="th": _moment(value, lang, time=False)
templates.env.filters["deadline"] = _deadline
templates.env.filters["state"] = _state
templates.env.filters["action"] = _action
templates.env.globals["place_words"] = place_words

TEXTS: dict[str, dict[str, Any]] = {
    "th": {
        "app": "ระบบรับเรื่องร้องทุกข์",
        "language": "ภาษา",
        "sign_in": "เข้าสู่ระบบสำหรับเจ้าหน้าที่",
        "sign_in_lead": "ศูนย์รับเรื่องร้องทุกข์และหน่วยงานที่เกี่ยวข้อง",
        "username": "ชื่อผู้ใช้",
        "password": "รหัสผ่าน",
        "submit": "เข้าสู่ระบบ",
        "citizen_hint": "ประชาชนไม่ต้องเข้าสู่ระบบ: ติดตามเรื่องด้วยรหัสติดตามบนใบรับเรื่อง",
        "bad_credentials": "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
        "bad_form": "แบบฟอร์มหมดอายุ กรุณาลองอีกครั้ง",
        "welcome": "สวัสดี",
        "signed_in_as": "เข้าสู่ระบบในชื่อ",
        "api_docs": "เอกสาร API",
        "sign_out": "ออกจากระบบ",
        "footer": "ข้อมูลส่วนบุคคลได้รับความคุ้มครองตาม พ.ร.บ. คุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562",
        "roles": {
            "officer": "เจ้าหน้าที่รับเรื่อง",
            "supervisor": "หัวหน้างาน",
            "agency": "เจ้าหน้าที่หน่วยงาน",
            "agency_head": "หัวหน้าหน่วยงาน",
            "auditor": "ผู้ตรวจสอบ",
            "admin": "ผู้ดูแลระบบ",
            "citizen": "ผู้ร้อง",
            "system": "ระบบ",
        },
    },
    "en": {
        "app": "Rongtuk complaint centre",
        "language": "Language",
        "sign_in": "Staff sign-in",
        "sign_in_lead": "Complaint centre and agency staff",
        "username": "User name",
        "password": "Password",
        "submit": "Sign in",
        "citizen_hint": "Citizens need no account: follow your case with the tracking code on your receipt.",
        "bad_credentials": "The user name or password is not correct.",
        "bad_form": "The form has expired; please try again.",
        "welcome": "Welcome",
        "signed_in_as": "Signed in as",
        "api_docs": "API documentation",
        "sign_out": "Sign out",
        "footer": "Personal data is protected under the Personal Data Protection Act B.E. 2562 (2019).",
        "roles": {
            "officer": "Officer",
            "supervisor": "Supervisor",
            "agency": "Agency staff",
            "agency_head": "Agency head",
            "auditor": "Auditor",
            "admin": "Administrator",
            "citizen": "Complainant",
            "system": "System",
        },
    },
}


for _code, _words in CONSOLE_TEXTS.items():
    TEXTS[_code].update(_words)


def page_lang(request: Request) -> str:
    """The reader's language: ?lang=, then the cookie, then Thai."""
    return _lang(request)


def _lang(request: Request) -> str:
    wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "th"
    return wanted if wanted in TEXTS else "th"


def _safe_next(target: str | None) -> str:
    # Only paths on this site: "//evil.example" and "https://..." would send the user elsewhere.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _cookie(response: Response, settings: Settings, name: str, value: str, *, http_only: bool, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=http_only,
        secure=bool(settings.cookie_secure),
        samesite="lax",
    )


def render_page(request: Request, settings: Settings, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the reader's language, with a CSRF token for its forms and the signed-in user for the menu."""
    lang = _lang(request)
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    context.setdefault("user", getattr(request.state, "principal", None))
    if status in (403, 409):  # a refused action, not a form to correct: headed as the error page is
        context.setdefault("problems_title", ERROR_TITLES[409][0 if lang == "th" else 1])
    elif status in (429, 503):  # the service could not take it now: nothing in the form to correct
        context.setdefault("problems_title", ERROR_TITLES[status][0 if lang == "th" else 1])
    response = templates.TemplateResponse(
        request, template, {"lang": lang, "t": TEXTS[lang], "csrf_token": csrf, **context}, status_code=status
    )
    # Readable by the page's own scripts (they send it as X-CSRF-Token), never by another site.
    _cookie(response, settings, CSRF_COOKIE, csrf, http_only=False, max_age=settings.session_hours * 3600)
    if "lang" in request.query_params:
        _cookie(response, settings, LANG_COOKIE, lang, http_only=True, max_age=365 * 86400)
    return response


_render = render_page


# What an error page is headed, by status: (Thai, English). Its message is the error's own, as the API's.
ERROR_TITLES: dict[int, tuple[str, str]] = {
    400: ("ที่อยู่ของหน้านี้ไม่ถูกต้อง", "This address is not valid"),
    401: ("กรุณาเข้าสู่ระบบ", "Please sign in"),
    403: ("ไม่มีสิทธิ์เข้าถึงหน้านี้", "You may not open this page"),
    404: ("ไม่พบหน้าที่ต้องการ", "Nothing was found here"),
    405: ("ไม่พบหน้าที่ต้องการ", "Nothing was found here"),
    409: ("ทำรายการนี้ไม่ได้ในขณะนี้", "This cannot be done now"),
    413: ("ข้อมูลที่ส่งมามีขนาดใหญ่เกินไป", "What was sent is too large"),
    422: ("ที่อยู่ของหน้านี้มีค่าที่ใช้ไม่ได้", "Something in this address is not valid"),
    429: ("มีคำขอมากเกินไป", "Too many requests"),
    503: ("ระบบไม่พร้อมให้บริการชั่วคราว", "The service is briefly unavailable"),
}
_SERVER_ERROR_TITLE = ("ระบบขัดข้อง", "Something went wrong on our side")


def error_page(request: Request, error: ErrorBody, headers: Mapping[str, str]) -> HTMLResponse:
    """An error as a page for a person in a browser: the same words the API answers with, what to do next
    (the page without what was wrong in its address, their console, or when to try again), same status."""
    from api.console import HOME_OF  # the consoles import this module

    lang = _lang(request)
    th_reader = lang == "th"
    th, en = ERROR_TITLES.get(error.status, _SERVER_ERROR_TITLE)
    principal = getattr(request.state, "principal", None)
    # A bad filter or page number: the same page without its query is one click away.
    plain = request.url.path if error.status in (400, 422) and request.url.query else None
    details = [
        ((d.field or "").removeprefix("query.").removeprefix("path.") or None, d.message_th if th_reader else d.message)
        for d in error.details
    ]
    home = HOME_OF.get(principal.role) if principal is not None else None
    if home is None and SESSION_COOKIE in request.cookies:
        home = "/"  # staff whose session the failed request never read (an unknown address) start again there
    response = render_page(
        request,
        request.app.state.settings,
        "error.html",
        error.status,
        title=th if th_reader else en,
        message=error.message_th if th_reader else error.message,
        details=details,
        plain=plain,
        home=home,
        sign_in=f"/login?next={request.url.path}" if error.status == 401 else None,
        retry_after=headers.get("Retry-After"),
    )
    response.headers.update(headers)
    return response


def _csrf_ok(request: Request, sent: str) -> bool:
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, settings: SettingsDep, next: str | None = None) -> HTMLResponse:
    """The staff sign-in page (Thai; ``?lang=en`` for English)."""
    return _render(request, settings, "login.html", next=_safe_next(next), username="", error=None)


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(limit("login"))])
async def login_form(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    """Check the credentials, start a session cookie and go where the user was heading (their console if
    nowhere in particular)."""
    t = TEXTS[_lang(request)]
    if not _csrf_ok(request, csrf_token):
        return _render(request, settings, "login.html", 403, next=_safe_next(next), username="", error=t["bad_form"])
    try:
        user = await sign_in(session, username=username, password=password)
    except AppError:
        return _render(
            request, settings, "login.html", 401, next=_safe_next(next), username="", error=t["bad_credentials"]
        )
    lifetime = timedelta(hours=settings.session_hours)
    token = await new_token(session, user=user, kind=SESSION, now=datetime.now(UTC), lifetime=lifetime)
    await session.commit()
    target = _safe_next(next)
    if target == "/":  # nowhere in particular: straight to the work of the role, not a page of links
        from api.console import HOME_OF  # the consoles import this module

        target = HOME_OF.get(StaffRole(user.role), "/")
    response = RedirectResponse(target, status_code=303)
    _cookie(response, settings, SESSION_COOKIE, token, http_only=True, max_age=int(lifetime.total_seconds()))
    # A fresh CSRF token with the new session, so a value planted before sign-in is useless after it.
    _cookie(
        response,
        settings,
        CSRF_COOKIE,
        secrets.token_urlsafe(24),
        http_only=False,
        max_age=int(lifetime.total_seconds()),
    )
    return response


@router.post("/logout")
async def logout_form(
    request: Request, session: SessionDep, csrf_token: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    """End the page session (revoked in the database, cookie removed)."""
    if not _csrf_ok(request, csrf_token):
        raise forbidden("The form has expired; reload the page.", "แบบฟอร์มหมดอายุ กรุณาโหลดหน้าใหม่", code="csrf_failed")
    if cookie := request.cookies.get(SESSION_COOKIE):
        stored = await users.token_by_hash(session, token_hash=token_digest(cookie), kind=SESSION)
        if stored is not None:
            await users.revoke_token(session, token=stored, now=datetime.now(UTC))
            await session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, settings: SettingsDep, principal: OptionalPrincipal) -> Response:
    """The signed-in staff member's start page (the consoles will hang off it)."""
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    from api.console import HOME_OF  # the consoles import this module

    return _render(request, settings, "home.html", user=principal, home=HOME_OF.get(principal.role))


# --- API docs and other operational pages, by configuration -----------------------------------------------


def ops_gate(setting: str) -> Any:
    """A dependency for an operational page: open, staff only (401 without sign-in) or off (404)."""

    def check(request: Request, principal: OptionalPrincipal) -> None:
        access: Access = getattr(request.app.state.settings, setting)
        if access == Access.OFF:
            raise not_found()
        if access == Access.STAFF and principal is None:
            raise unauthorized()

    return check


@router.get("/openapi.json", dependencies=[Depends(ops_gate("docs_access"))])
async def openapi_spec(request: Request) -> JSONResponse:
    """The OpenAPI description of the API."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request, settings: SettingsDep, principal: OptionalPrincipal) -> Response:
    """Swagger UI, served from the swagger-ui-bundle package."""
    if settings.docs_access == Access.OFF:
        raise not_found()
    if settings.docs_access == Access.STAFF and principal is None:
        return RedirectResponse("/login?next=/docs", status_code=303)
    return templates.TemplateResponse(request, "docs.html", {})

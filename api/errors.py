"""Bilingual (English and Thai) error responses for the HTTP API, one JSON shape for every error.

Every error looks like::

    {"error": {"status": 422, "code": "validation_failed", "message": "...", "message_th": "...",
               "details": [{"field": "complainant.phone", "message": "...", "message_th": "..."}]}}

What the client sent is never copied into an error: it may be personal data (PDPA) or megabytes long.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.db import is_database_unavailable

__all__ = [
    "AppError",
    "BilingualError",
    "ErrorBody",
    "ErrorDetail",
    "ErrorPage",
    "ProblemDetail",
    "app_error_handler",
    "bilingual",
    "conflict",
    "http_exception_handler",
    "install_error_handlers",
    "not_found",
    "split_bilingual",
    "unauthorized",
    "unhandled_error_handler",
    "validation_error_handler",
    "wants_page",
]

logger = structlog.get_logger(__name__)

# Joins the two languages in one ValueError message; chosen because it never occurs in normal text.
_SEPARATOR = " ‖ "
# Pydantic puts this in front of the message of a ValueError raised by a validator.
_VALUE_ERROR_PREFIX = "Value error, "
# A body with thousands of unknown keys must not produce a response as big as itself.
_MAX_DETAILS = 50
_MAX_SEGMENT = 64


# --- messages in two languages ----------------------------------------------------------------------------


def bilingual(message: str, message_th: str) -> str:
    """Joins an English and a Thai message into one string that :func:`split_bilingual` can take apart."""
    return f"{message}{_SEPARATOR}{message_th}"


def split_bilingual(text: str) -> tuple[str, str] | None:
    """Takes a :func:`bilingual` string apart into (English, Thai); ``None`` if it is not one."""
    text = text.removeprefix(_VALUE_ERROR_PREFIX)
    message, sep, message_th = text.partition(_SEPARATOR)
    return (message, message_th) if sep and message and message_th else None


class BilingualError(ValueError):
    """A validation failure to raise from pydantic validators, with its message in English and Thai.

    ``field`` names the sub-field at fault when a model validator raises it, so the response can point at
    ``complainant.phone`` rather than at ``complainant`` as a whole.
    """

    def __init__(self, message: str, message_th: str, *, field: str | None = None) -> None:
        super().__init__(bilingual(message, message_th))
        self.message = message
        self.message_th = message_th
        self.field = field


# --- the response shape -----------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """One problem within an error, usually one field of the request."""

    # Dotted path such as "complainant.preferred_channels[0]"; None when it is about the whole request.
    field: str | None = None
    message: str
    message_th: str
    allowed_actions: list[str] | None = None  # for a 409 from the case state machine

    @model_serializer(mode="wrap")
    def _omit_empty_actions(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # Only state-machine conflicts carry actions; a null key on every field error would be noise.
        # No return annotation on purpose: with one, pydantic would publish this model as a bare object in
        # the OpenAPI schema instead of its fields.
        data: dict[str, Any] = handler(self)
        if data.get("allowed_actions") is None:
            data.pop("allowed_actions", None)
        return data


class ErrorBody(BaseModel):
    """What went wrong: HTTP status, a stable machine code and messages a person understands."""

    status: int
    code: str
    message: str
    message_th: str
    details: list[ErrorDetail] = []


class ProblemDetail(BaseModel):
    """The JSON body of every error response of the API."""

    error: ErrorBody


# Renders an error as a page for a person in a browser (api/routes/pages.py registers one); it must not raise.
ErrorPage = Callable[[Request, ErrorBody, Mapping[str, str]], Response]

# Addresses that answer programs, not people: JSON whatever the client accepts.
_MACHINE_PREFIXES = ("/api/", "/codec/", "/line/", "/open311/", "/static/")
_MACHINE_PATHS = frozenset({"/metrics", "/readyz", "/healthz", "/openapi.json"})


def wants_page(request: Request) -> bool:
    """A browser asking for a page (``Accept: text/html``) at an address that is not the API's."""
    path = request.url.path
    if path in _MACHINE_PATHS or path.startswith(_MACHINE_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def _json_problem(
    status: int,
    code: str,
    message: str,
    message_th: str,
    details: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ProblemDetail(
        error=ErrorBody(status=int(status), code=code, message=message, message_th=message_th, details=list(details))
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=int(status), headers=dict(headers or {}))


def _problem(
    request: Request,
    status: int,
    code: str,
    message: str,
    message_th: str,
    details: Sequence[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    page: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if page is not None and wants_page(request):
        body = ErrorBody(status=int(status), code=code, message=message, message_th=message_th, details=list(details))
        try:
            return page(request, body, dict(headers or {}))
        except Exception:  # a page that cannot be drawn still answers, in JSON
            logger.exception("error_page_failed", path=request.url.path, status=int(status))
    return _json_problem(status, code, message, message_th, details, headers)


# --- errors raised by our own code ------------------------------------------------------------------------


class AppError(Exception):
    """An error our code raises on purpose, answered with its status and bilingual messages."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        message_th: str,
        details: Sequence[ErrorDetail | Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = int(status)
        self.code = code
        self.message = message
        self.message_th = message_th
        # Plain dicts are welcome; checking them here fails where the mistake is, not when answering.
        self.details = [d if isinstance(d, ErrorDetail) else ErrorDetail.model_validate(d) for d in details]
        self.headers = dict(headers or {})


def not_found(
    message: str = "Nothing was found with this identifier.",
    message_th: str = "ไม่พบข้อมูลตามรหัสที่ระบุ",
    *,
    code: str = "not_found",
) -> AppError:
    """A 404 for a case, agency or other record that does not exist (or that the caller may not see)."""
    return AppError(HTTPStatus.NOT_FOUND, code, message, message_th)


def conflict(
    message: str = "This action is not possible in the current state of the case.",
    message_th: str = "ไม่สามารถดำเนินการนี้ได้ในสถานะปัจจุบันของเรื่อง",
    *,
    code: str = "conflict",
    allowed_actions: Sequence[str] | None = None,
    details: Sequence[ErrorDetail | Mapping[str, Any]] = (),
) -> AppError:
    """A 409 for an action the case state machine refuses; ``allowed_actions`` tells what is possible now."""
    all_details: list[ErrorDetail | Mapping[str, Any]] = list(details)
    if allowed_actions is not None:
        listed = ", ".join(allowed_actions) or "none"
        listed_th = ", ".join(allowed_actions) or "ไม่มี"
        all_details.append(
            ErrorDetail(
                message=f"Actions possible now: {listed}.",
                message_th=f"การดำเนินการที่ทำได้ขณะนี้: {listed_th}",
                allowed_actions=list(allowed_actions),
            )
        )
    return AppError(HTTPStatus.CONFLICT, code, message, message_th, all_details)


def forbidden(
    message: str = "You may not do this.",
    message_th: str = "ท่านไม่มีสิทธิ์ดำเนินการนี้",
    *,
    code: str = "forbidden",
) -> AppError:
    """A 403 for a caller who is known but whose role or agency does not allow the request."""
    return AppError(HTTPStatus.FORBIDDEN, code, message, message_th)


def unauthorized(
    message: str = "You need to sign in to do this.",
    message_th: str = "กรุณาเข้าสู่ระบบก่อนดำเนินการ",
    *,
    code: str = "unauthorized",
) -> AppError:
    """A 401 for a request without valid credentials."""
    return AppError(HTTPStatus.UNAUTHORIZED, code, message, message_th, headers={"WWW-Authenticate": "Bearer"})


# --- request validation (422) -----------------------------------------------------------------------------

# Where a parameter came from; a body field is named without it, as clients think of their JSON.
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_QUOTED = re.compile(r"'([^']*)'")


def _field_path(loc: Sequence[int | str], extra: str | None = None) -> str | None:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            # Keys come from the client, so an unknown key can be huge: keep enough to recognise it.
            name = part if len(part) <= _MAX_SEGMENT else part[:_MAX_SEGMENT] + "…"
            path += f".{name}" if path else name
    if extra:
        path = f"{path}.{extra}" if path else extra
    return path or None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _describe(error: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """English and Thai message for one pydantic error, and a sub-field to append to its location."""
    kind: str = error.get("type", "")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    whole_body = [p for p in error.get("loc", ()) if p not in _SOURCES] == []

    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        if isinstance(cause, BilingualError):
            return cause.message, cause.message_th, cause.field
        split = split_bilingual(str(error.get("msg", "")))
        if split is not None:
            return split[0], split[1], None
        # Someone else's validator: its text might quote the input, so it is not passed on.
        return "This value is not valid.", "ค่านี้ไม่ถูกต้อง", None

    if kind == "missing":
        if whole_body:
            return "The request has no body; send the data as JSON.", "คำขอไม่มีข้อมูล โปรดส่งข้อมูลเป็น JSON", None
        return "This field is required.", "ต้องระบุข้อมูลในช่องนี้", None
    if kind == "json_invalid":
        return "The request body is not valid JSON.", "ข้อมูลที่ส่งมาไม่ใช่ JSON ที่ถูกต้อง", None
    if kind == "extra_forbidden":
        return (
            "This field is not part of the request; check its spelling.",
            "ไม่มีช่องข้อมูลนี้ในคำขอ โปรดตรวจสอบการสะกด",
            None,
        )
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        if n == 1:
            return "This field must not be empty.", "ช่องนี้ต้องไม่เว้นว่าง", None
        return f"Must be at least {n} characters long.", f"ต้องมีความยาวอย่างน้อย {n} ตัวอักษร", None
    if kind == "string_too_long":
        n = ctx.get("max_length")
        given = error.get("input")
        # The length of what was sent is useful and harmless; the text itself is neither.
        if isinstance(given, str):
            return (
                f"Must be at most {n} characters long; this one has {len(given)}.",
                f"ต้องมีความยาวไม่เกิน {n} ตัวอักษร (ที่ส่งมามี {len(given)} ตัวอักษร)",
                None,
            )
        return f"Must be at most {n} characters long.", f"ต้องมีความยาวไม่เกิน {n} ตัวอักษร", None
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"Must have at least {_plural(n, 'item')}.", f"ต้องมีอย่างน้อย {n} รายการ", None
    if kind == "too_long":
        n, actual = ctx.get("max_length"), ctx.get("actual_length")
        has = f"; this one has {actual}" if actual is not None else ""
        has_th = f" (ที่ส่งมามี {actual} รายการ)" if actual is not None else ""
        return f"Must have at most {_plural(n or 0, 'item')}{has}.", f"ต้องมีไม่เกิน {n} รายการ{has_th}", None
    if kind in ("enum", "literal_error"):
        allowed = ", ".join(_QUOTED.findall(str(ctx.get("expected", ""))))
        return f"Must be one of: {allowed}.", f"ต้องเป็นค่าใดค่าหนึ่งต่อไปนี้: {allowed}", None
    if kind == "string_type":
        return "Must be text.", "ต้องเป็นข้อความ", None
    if kind == "string_pattern_mismatch":
        return "The format is not valid.", "รูปแบบข้อมูลไม่ถูกต้อง", None
    if kind in ("int_type", "int_parsing", "int_from_float", "int_parsing_size"):
        return "Must be a whole number.", "ต้องเป็นจำนวนเต็ม", None
    if kind in ("float_type", "float_parsing"):
        return "Must be a number.", "ต้องเป็นตัวเลข", None
    if kind == "finite_number":
        return "Must be a finite number.", "ต้องเป็นตัวเลขที่มีค่าจำกัด", None
    if kind in ("bool_type", "bool_parsing"):
        return "Must be true or false.", "ต้องเป็น true หรือ false", None
    if kind.startswith("date_"):
        return (
            "Must be a date written as YYYY-MM-DD, the year in the Gregorian calendar (e.g. 2025-01-31).",
            "ต้องเป็นวันที่ในรูปแบบ YYYY-MM-DD โดยใช้ปีคริสต์ศักราช (เช่น 2025-01-31)",
            None,
        )
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ต้องมีค่าอย่างน้อย", "ge"),
            "greater_than": ("greater than", "ต้องมีค่ามากกว่า", "gt"),
            "less_than_equal": ("at most", "ต้องมีค่าไม่เกิน", "le"),
            "less_than": ("less than", "ต้องมีค่าน้อยกว่า", "lt"),
        }
        en, th, key = words[kind]
        return f"Must be {en} {ctx.get(key)}.", f"{th} {ctx.get(key)}", None
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        if whole_body:
            return "The request body must be a JSON object.", "ข้อมูลที่ส่งมาต้องเป็นออบเจกต์ JSON", None
        return "Must be an object.", "ต้องเป็นออบเจกต์ (object)", None
    if kind == "list_type":
        return "Must be a list.", "ต้องเป็นรายการ (list)", None
    # Pydantic's own messages describe the type expected and do not quote the input.
    return str(error.get("msg") or "This value is not valid."), "ค่านี้ไม่ถูกต้อง", None


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """Answers a request that fails validation with a 422 naming each bad field, in English and Thai."""
    if not isinstance(exc, RequestValidationError):
        return await unhandled_error_handler(request, exc)
    errors = list(exc.errors())
    details = []
    for error in errors[:_MAX_DETAILS]:
        message, message_th, extra = _describe(error)
        # For broken JSON the location is a character offset, not a field.
        field = None if error.get("type") == "json_invalid" else _field_path(error.get("loc", ()), extra)
        details.append(ErrorDetail(field=field, message=message, message_th=message_th))
    if any(e.get("type") == "json_invalid" for e in errors):
        message = "The request body is not valid JSON."
        message_th = "ข้อมูลที่ส่งมาไม่ใช่ JSON ที่ถูกต้อง"
    else:
        n = len(errors)
        are = "1 field is" if n == 1 else f"{n} fields are"
        message = f"The request could not be accepted: {are} missing or not valid."
        message_th = f"ไม่สามารถรับคำขอได้: ข้อมูล {n} ช่องไม่ครบหรือไม่ถูกต้อง"
    return _problem(request, HTTPStatus.UNPROCESSABLE_ENTITY, "validation_failed", message, message_th, details)


# --- everything else ---------------------------------------------------------------------------------------


async def app_error_handler(request: Request, exc: Exception) -> Response:
    """Answers an :class:`AppError` with its own status, code and messages."""
    if not isinstance(exc, AppError):
        return await unhandled_error_handler(request, exc)
    return _problem(request, exc.status, exc.code, exc.message, exc.message_th, exc.details, exc.headers)


_HTTP_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("The request is not valid.", "คำขอไม่ถูกต้อง"),
    401: ("You need to sign in to do this.", "กรุณาเข้าสู่ระบบก่อนดำเนินการ"),
    403: ("You are not allowed to do this.", "คุณไม่มีสิทธิ์ดำเนินการนี้"),
    404: ("Nothing was found at this address; check the URL.", "ไม่พบข้อมูลที่ที่อยู่นี้ โปรดตรวจสอบ URL"),
    405: ("This address does not accept this HTTP method.", "ที่อยู่นี้ไม่รองรับวิธีเรียก (HTTP method) นี้"),
    413: ("The request is too large.", "คำขอมีขนาดใหญ่เกินไป"),
    415: ("This content type is not supported; send JSON.", "ไม่รองรับชนิดข้อมูลนี้ โปรดส่งเป็น JSON"),
    429: ("Too many requests; please wait a moment and try again.", "มีคำขอมากเกินไป โปรดรอสักครู่แล้วลองใหม่"),
    503: (
        "The service is temporarily unavailable; please try again later.",
        "ระบบไม่พร้อมให้บริการชั่วคราว โปรดลองใหม่ภายหลัง",
    ),
}


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Answers Starlette/FastAPI ``HTTPException`` (unknown route, wrong method, ...) in the common shape."""
    if not isinstance(exc, StarletteHTTPException):
        return await unhandled_error_handler(request, exc)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    code = re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
    fallback_th = "เกิดข้อผิดพลาดในการประมวลผลคำขอ" if exc.status_code < 500 else "ระบบขัดข้อง โปรดลองใหม่ภายหลัง"
    message, message_th = _HTTP_MESSAGES.get(exc.status_code, (f"{phrase}.", fallback_th))
    # A specific detail written by one of our developers beats the generic text (English only, though:
    # raise AppError to give a Thai message as well).
    if isinstance(exc.detail, str) and exc.detail and exc.detail != phrase:
        message = exc.detail
    return _problem(request, exc.status_code, code, message, message_th, headers=exc.headers)


_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def database_unavailable(request: Request, *, form: bool = False) -> AppError:
    """503: the read model (the case records) could not be reached, or did not answer in time. A read changed
    nothing; a write cannot be confirmed (a statement may have committed just before the connection was lost),
    so the caller is told so, and how to send it again safely (``form``: a complaint form, which carries its
    own key)."""
    if request.method in _READS:
        message = "The case records cannot be reached right now; nothing was changed. Please try again shortly."
        message_th = "ขณะนี้ไม่สามารถเข้าถึงฐานข้อมูลเรื่องร้องทุกข์ได้ ยังไม่มีการเปลี่ยนแปลงใด กรุณาลองใหม่อีกครั้งในอีกสักครู่"
    elif form:
        message = (
            "The case records cannot be reached right now, so your complaint could not be confirmed. Send the "
            "form again in a few seconds: it will be filed once, never twice."
        )
        message_th = (
            "ขณะนี้ไม่สามารถเข้าถึงฐานข้อมูลเรื่องร้องทุกข์ได้ จึงยังยืนยันเรื่องของท่านไม่ได้ "
            "กรุณาส่งแบบฟอร์มอีกครั้งในอีกสักครู่ ระบบจะบันทึกเรื่องเพียงครั้งเดียว"
        )
    elif request.headers.get("Idempotency-Key"):
        message = (
            "The case records cannot be reached right now, so your request could not be confirmed. Send it again "
            "with the same Idempotency-Key: it will be applied once, never twice."
        )
        message_th = (
            "ขณะนี้ไม่สามารถเข้าถึงฐานข้อมูลเรื่องร้องทุกข์ได้ จึงยังยืนยันคำขอของท่านไม่ได้ "
            "กรุณาส่งใหม่ด้วย Idempotency-Key เดิม ระบบจะดำเนินการเพียงครั้งเดียว"
        )
    else:
        message = (
            "The case records cannot be reached right now, so we could not confirm whether your request was "
            "saved. Please try again shortly."
        )
        message_th = (
            "ขณะนี้ไม่สามารถเข้าถึงฐานข้อมูลเรื่องร้องทุกข์ได้ จึงยังยืนยันไม่ได้ว่าคำขอของท่านได้รับการบันทึกแล้วหรือไม่ กรุณาลองใหม่อีกครั้งในอีกสักครู่"
        )
    return AppError(503, "database_unavailable", message, message_th, headers={"Retry-After": "5"})


async def database_error_handler(request: Request, exc: Exception) -> Response:
    """Answers the database being away with a 503 and Retry-After (logged as a warning, by the error's class
    alone: no statement, no parameters, no stack); anything else as :func:`unhandled_error_handler`."""
    if not is_database_unavailable(exc):
        return await unhandled_error_handler(request, exc)
    return await app_error_handler(request, database_away(request, exc))


def database_away(request: Request, exc: BaseException, *, form: bool = False) -> AppError:
    """The 503 for ``exc``, the database away, logged as a warning by the error's class alone."""
    logger.warning("database_unavailable", path=request.url.path, method=request.method, error=type(exc).__name__)
    return database_unavailable(request, form=form)


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    """Answers any unexpected exception with a generic 500, keeping the details in the log only; the database
    being away (raised in a middleware, which reaches only this handler) is a 503 instead."""
    if is_database_unavailable(exc):
        return await database_error_handler(request, exc)
    # Neither the body nor the query string is logged: both may carry personal data.
    logger.exception("unhandled_error", path=request.url.path, method=request.method, exc_info=exc)
    return _problem(
        request,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on our side and the request was not completed; please try again later.",
        "ระบบขัดข้องและยังไม่ได้ดำเนินการตามคำขอ โปรดลองใหม่อีกครั้งภายหลัง",
    )


def install_error_handlers(app: FastAPI, *, page: ErrorPage | None = None) -> None:
    """Registers the handlers above on ``app`` so every error has the :class:`ProblemDetail` shape; with
    ``page``, a browser asking for a page gets the same words as a page instead (:func:`wants_page`)."""
    app.state.error_page = page
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    for away in (sa_exc.SQLAlchemyError, ConnectionError, TimeoutError):
        app.add_exception_handler(away, database_error_handler)
    # Starlette runs the Exception handler in its outermost middleware, then re-raises for the server's log.
    app.add_exception_handler(Exception, unhandled_error_handler)

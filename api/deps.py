"""FastAPI dependencies: settings, database sessions, the Temporal client, the current actor and case."""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import unquote

import structlog
from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.auth import SESSION, Authenticator, Principal, StaffRole, invalid_token, principal_of, redeem
from api.errors import AppError, forbidden, not_found, unauthorized
from config.settings import Settings
from store import audit, models
from store.db import Database
from workflows.process import Actor, Role


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[AsyncSession]:
    async with db.sessions() as session:
        yield session


async def get_report_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session from the reports' pool, which waits ``report_timeout_seconds`` for a statement, not
    ``database_timeout_seconds``: a report over years is one long statement, not a database away."""
    db: Database = request.app.state.report_db
    async with db.sessions() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    return request.app.state.temporal  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ReportSessionDep = Annotated[AsyncSession, Depends(get_report_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


SESSION_COOKIE = "rongtuk_session"
CSRF_COOKIE = "rongtuk_csrf"
CSRF_HEADER = "X-CSRF-Token"
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _principal_from_cookie(request: Request, session: AsyncSession, cookie: str) -> Principal | None:
    try:
        _, user = await redeem(session, token=cookie, kind=SESSION, now=datetime.now(UTC))
    except AppError:
        return None
    # A cookie rides along with any request the browser makes: changes also need the CSRF token, which a
    # page of another site cannot read.
    if request.method not in _SAFE_METHODS:
        sent, expected = request.headers.get(CSRF_HEADER, ""), request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise forbidden(
                "This change needs the page's CSRF token; reload the page and try again.",
                "คำขอนี้ต้องมีรหัส CSRF ของหน้าเว็บ กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง",
                code="csrf_failed",
            )
    return principal_of(user)


async def get_optional_principal(request: Request, session: SessionDep) -> Principal | None:
    """The signed-in staff member (bearer token, or the login page's session cookie), or None."""
    if hasattr(request.state, "principal"):
        return request.state.principal  # type: ignore[no-any-return]
    principal: Principal | None = None
    if header := request.headers.get("authorization"):
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise invalid_token()
        authenticator: Authenticator = request.app.state.authenticator
        principal = await authenticator.principal(token.strip())
    elif cookie := request.cookies.get(SESSION_COOKIE):
        principal = await _principal_from_cookie(request, session, cookie)
    request.state.principal = principal
    if principal is not None:
        structlog.contextvars.bind_contextvars(user=principal.subject)
    return principal


async def get_principal(principal: Annotated[Principal | None, Depends(get_optional_principal)]) -> Principal:
    """The signed-in staff member, or 401."""
    if principal is None:
        raise unauthorized(
            "Sign in first: send 'Authorization: Bearer <token>' from POST /api/v1/auth/login.",
            "กรุณาเข้าสู่ระบบก่อน โดยส่ง 'Authorization: Bearer <token>' ที่ได้จาก POST /api/v1/auth/login",
        )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


def _actor_of(principal: Principal) -> Actor:
    actor = principal.actor
    if actor is None:
        raise forbidden(
            "Administrators manage users; case work needs a staff role.",
            "ผู้ดูแลระบบจัดการผู้ใช้งานเท่านั้น การทำงานกับเรื่องร้องทุกข์ต้องใช้บทบาทเจ้าหน้าที่",
            code="role_not_allowed",
        )
    return actor


async def get_current_actor(principal: CurrentPrincipal) -> Actor:
    """The process table's actor for the signed-in user (403 for administrators)."""
    return _actor_of(principal)


async def get_optional_actor(principal: OptionalPrincipal) -> Actor | None:
    """The signed-in user's actor if there is one; citizens filing on the web need not sign in."""
    return _actor_of(principal) if principal is not None else None


CurrentActor = Annotated[Actor, Depends(get_current_actor)]
OptionalActor = Annotated[Actor | None, Depends(get_optional_actor)]


def require_roles(*roles: StaffRole) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 for other staff, 401 for anonymous callers)."""
    allowed = frozenset(roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise forbidden(f"Only these roles may do this: {names}.", f"เฉพาะบทบาทต่อไปนี้เท่านั้นที่ทำได้: {names}")
        return principal

    return check


def access_reason(request: Request) -> str | None:
    """Why the reader opened the case, if they said so (``X-Access-Reason`` header or ``reason`` query)."""
    # Header values are Latin-1, so a Thai reason arrives percent-encoded there.
    header = request.headers.get("x-access-reason")
    reason = unquote(header) if header else request.query_params.get("reason")
    if not reason:
        return None
    return _CONTROL_CHARACTERS.sub("", reason).strip()[:200] or None


async def log_read(session: AsyncSession, request: Request, *, case_id: str, what: str, commit: bool = True) -> None:
    """Append the signed-in reader's view of a case's personal data to the access log (PDPA: who saw what),
    committed at once unless ``commit=False`` (:func:`store.audit.record_access`)."""
    principal: Principal = request.state.principal
    await audit.record_access(
        session,
        at=datetime.now(UTC),
        actor_id=principal.subject,
        actor_role=principal.role.value,
        actor_agency=principal.agency,
        case_id=case_id,
        what=what,
        reason=access_reason(request),
        commit=commit,
    )


async def get_current_case(
    case_id: Annotated[str, Path(max_length=32)], session: SessionDep, actor: CurrentActor
) -> models.Case:
    """The case named in the path, if it exists and the caller may see it (404 otherwise, also for agencies
    that have no task on it, so they cannot probe for other agencies' cases)."""
    structlog.contextvars.bind_contextvars(case_id=case_id)
    case = await session.get(models.Case, case_id)
    if case is None or (actor.role is Role.AGENCY and actor.agency not in (case.agencies or [])):
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    return case


CurrentCase = Annotated[models.Case, Depends(get_current_case)]

"""FastAPI dependencies: settings, database sessions, the Temporal client, the current actor and case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import structlog
from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.errors import forbidden, not_found, unauthorized
from config.settings import Settings
from store import models
from store.db import Database
from workflows.process import Actor, Role


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[AsyncSession]:
    async with db.sessions() as session:
        yield session


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]


def get_current_actor(
    x_actor_id: Annotated[str | None, Header(max_length=64)] = None,
    x_actor_role: Annotated[str | None, Header(max_length=16)] = None,
    x_actor_agency: Annotated[str | None, Header(max_length=32)] = None,
) -> Actor:
    """Who is calling. Until authentication lands it is read from ``X-Actor-*`` headers; authentication will
    replace this one function and nothing else."""
    if not x_actor_id or not x_actor_role:
        raise unauthorized(
            "Say who you are with the X-Actor-Id and X-Actor-Role headers.",
            "กรุณาระบุผู้ใช้งานด้วยส่วนหัว X-Actor-Id และ X-Actor-Role",
        )
    try:
        role = Role(x_actor_role)
    except ValueError:
        roles = ", ".join(r.value for r in Role if r is not Role.SYSTEM)
        raise unauthorized(
            f"Unknown role '{x_actor_role}'. Known roles: {roles}.",
            f"ไม่รู้จักบทบาท '{x_actor_role}' บทบาทที่ใช้ได้: {roles}",
        ) from None
    if role is Role.SYSTEM:
        raise unauthorized("The system role cannot be used over the API.", "ไม่สามารถใช้บทบาทระบบผ่าน API ได้")
    if role is Role.AGENCY and not x_actor_agency:
        raise unauthorized(
            "Agency staff must send X-Actor-Agency with their agency code.",
            "เจ้าหน้าที่หน่วยงานต้องระบุรหัสหน่วยงานในส่วนหัว X-Actor-Agency",
        )
    return Actor(id=x_actor_id, role=role, agency=x_actor_agency if role is Role.AGENCY else None)


def get_optional_actor(
    x_actor_id: Annotated[str | None, Header(max_length=64)] = None,
    x_actor_role: Annotated[str | None, Header(max_length=16)] = None,
    x_actor_agency: Annotated[str | None, Header(max_length=32)] = None,
) -> Actor | None:
    """The caller if they said who they are; citizens filing on the web need not."""
    if not x_actor_id and not x_actor_role:
        return None
    return get_current_actor(x_actor_id, x_actor_role, x_actor_agency)


CurrentActor = Annotated[Actor, Depends(get_current_actor)]
OptionalActor = Annotated[Actor | None, Depends(get_optional_actor)]


async def get_current_case(
    case_id: Annotated[str, Path(max_length=32)], session: SessionDep, actor: CurrentActor
) -> models.Case:
    """The case named in the path, if it exists and the caller may see it (404 otherwise, also for agencies
    that have no task on it, so they cannot probe for other agencies' cases)."""
    structlog.contextvars.bind_contextvars(case_id=case_id)
    case = await session.get(models.Case, case_id)
    if case is None or (actor.role is Role.AGENCY and actor.agency not in (case.agencies or [])):
        raise not_found(f"No case {case_id}.", f"ไม่พบเรื่องเลขที่ {case_id}")
    if actor.role is Role.CITIZEN:
        raise forbidden(
            "Citizens follow their case with its tracking code at /api/v1/track/{code}.",
            "ผู้ร้องติดตามเรื่องได้ด้วยรหัสติดตามที่ /api/v1/track/{code}",
        )
    return case


CurrentCase = Annotated[models.Case, Depends(get_current_case)]

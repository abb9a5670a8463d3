"""Signing in over the API: password login, token refresh, logout and who am I."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import REFRESH, issue_access_token, new_token, principal_of, redeem, sign_in, token_digest
from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.limits import limit
from config.settings import Settings
from store import models, users

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Annotated[str, Field(min_length=1, max_length=128)]


class UserOut(BaseModel):
    username: str
    role: str
    agency: str | None
    unit: str | None


class TokensOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth 2 token type, not a secret)
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: UserOut


async def _tokens(session: AsyncSession, settings: Settings, user: models.User) -> TokensOut:
    now = datetime.now(UTC)
    principal = principal_of(user)
    access, lifetime = issue_access_token(settings, principal, now=now)
    refresh_lifetime = timedelta(days=settings.refresh_token_days)
    refresh = await new_token(session, user=user, kind=REFRESH, now=now, lifetime=refresh_lifetime)
    await session.commit()
    return TokensOut(
        access_token=access,
        expires_in=lifetime,
        refresh_token=refresh,
        refresh_expires_in=int(refresh_lifetime.total_seconds()),
        user=UserOut(**principal.public()),
    )


@router.post("/login", response_model=TokensOut, dependencies=[Depends(limit("login"))])
async def login(body: LoginIn, session: SessionDep, settings: SettingsDep) -> TokensOut:
    """Sign in with user name and password: a short-lived access token and a refresh token."""
    user = await sign_in(session, username=body.username, password=body.password)
    return await _tokens(session, settings, user)


@router.post("/refresh", response_model=TokensOut, dependencies=[Depends(limit("login"))])
async def refresh(body: RefreshIn, session: SessionDep, settings: SettingsDep) -> TokensOut:
    """Trade a refresh token for a new access token and a new refresh token (the old one stops working)."""
    now = datetime.now(UTC)
    stored, user = await redeem(session, token=body.refresh_token, kind=REFRESH, now=now)
    await users.revoke_token(session, token=stored, now=now)
    return await _tokens(session, settings, user)


@router.post("/logout", status_code=204)
async def logout(body: RefreshIn, session: SessionDep) -> None:
    """Revoke a refresh token; the access token lapses within minutes on its own."""
    stored = await users.token_by_hash(session, token_hash=token_digest(body.refresh_token), kind=REFRESH)
    if stored is not None:
        await users.revoke_token(session, token=stored, now=datetime.now(UTC))
        await session.commit()


@router.get("/me", response_model=UserOut)
async def me(principal: CurrentPrincipal) -> UserOut:
    """Who the token belongs to: user name, role, agency and unit."""
    return UserOut(**principal.public())

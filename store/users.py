"""Staff accounts, refresh tokens and page sessions in the read model's database (the embedded identity store).

Passwords arrive here already hashed and tokens as their SHA-256: this module never sees a secret in clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import models


async def user_by_username(session: AsyncSession, *, username: str) -> models.User | None:
    """The account with this user name, active or not."""
    return (await session.execute(select(models.User).where(models.User.username == username))).scalar_one_or_none()


async def add_user(
    session: AsyncSession,
    *,
    username: str,
    role: str,
    password_hash: str,
    now: datetime,
    agency: str | None = None,
    unit: str | None = None,
    display_name: str | None = None,
) -> models.User:
    """Create an active account (the caller checks that the name is free)."""
    user = models.User(
        username=username,
        role=role,
        agency=agency,
        unit=unit,
        display_name=display_name,
        password_hash=password_hash,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def set_password_hash(session: AsyncSession, *, user: models.User, password_hash: str, now: datetime) -> None:
    """Replace the account's password hash."""
    user.password_hash = password_hash
    user.updated_at = now


async def set_active(session: AsyncSession, *, user: models.User, active: bool, now: datetime) -> None:
    """Enable or disable the account; disabling also ends its sessions and refresh tokens."""
    user.active = active
    user.updated_at = now
    if not active:
        await revoke_user_tokens(session, user_id=user.id, now=now)


async def store_token(
    session: AsyncSession, *, token_hash: str, kind: str, user_id: int, now: datetime, expires_at: datetime
) -> None:
    """Remember a refresh token or session by its hash."""
    session.add(
        models.AuthToken(token_hash=token_hash, kind=kind, user_id=user_id, created_at=now, expires_at=expires_at)
    )
    await session.flush()


async def token_by_hash(session: AsyncSession, *, token_hash: str, kind: str) -> models.AuthToken | None:
    """The stored token with this hash and kind, revoked or not."""
    query = select(models.AuthToken).where(models.AuthToken.token_hash == token_hash, models.AuthToken.kind == kind)
    return (await session.execute(query)).scalar_one_or_none()


async def revoke_token(session: AsyncSession, *, token: models.AuthToken, now: datetime) -> None:
    """End one refresh token or session."""
    if token.revoked_at is None:
        token.revoked_at = now


async def revoke_user_tokens(session: AsyncSession, *, user_id: int, now: datetime) -> None:
    """End every refresh token and session of a user (disabled account, or a stolen token replayed)."""
    await session.execute(
        update(models.AuthToken)
        .where(models.AuthToken.user_id == user_id, models.AuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )

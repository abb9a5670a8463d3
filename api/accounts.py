"""Managing staff accounts (the embedded identity store): the ``rongtuk users`` commands and the demo users."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from api.auth import USERNAME_PATTERN, StaffRole, hash_password, password_problem, role_problem
from store import users
from store.db import Database


class AccountError(ValueError):
    """A request the account store refuses; the message is safe to print (it never holds the password)."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: StaffRole
    agency: str | None = None
    unit: str | None = None


# One account per role for a newcomer's `rongtuk dev`; their passwords are random and printed once.
DEMO_USERS = (
    DemoUser("demo-officer", StaffRole.OFFICER),
    DemoUser("demo-supervisor", StaffRole.SUPERVISOR),
    DemoUser("demo-bma", StaffRole.AGENCY, "BMA", "district-works"),
    DemoUser("demo-bma-head", StaffRole.AGENCY_HEAD, "BMA"),
    DemoUser("demo-auditor", StaffRole.AUDITOR),
    DemoUser("demo-admin", StaffRole.ADMIN),
)


def new_password() -> str:
    """A random password to hand out once (about 100 bits)."""
    return secrets.token_urlsafe(15)


async def add_account(
    db: Database,
    *,
    username: str,
    role: StaffRole,
    password: str,
    agency: str | None = None,
    unit: str | None = None,
    display_name: str | None = None,
) -> None:
    """Create an account; refuses a taken or malformed name, a weak password, or an agency role without agency."""
    username = username.strip().lower()
    if not USERNAME_PATTERN.match(username):
        raise AccountError("a user name is 2-64 characters: lower-case letters, digits, '.', '_' and '-'")
    if problem := role_problem(role, agency) or password_problem(password):
        raise AccountError(problem)
    async with db.session() as session:
        if await users.user_by_username(session, username=username) is not None:
            raise AccountError(f"user {username} exists already")
        await users.add_user(
            session,
            username=username,
            role=role.value,
            password_hash=hash_password(password),
            now=datetime.now(UTC),
            agency=agency,
            unit=unit,
            display_name=display_name,
        )


async def set_account_active(db: Database, *, username: str, active: bool) -> None:
    """Enable or disable an account (disabling signs it out everywhere)."""
    async with db.session() as session:
        user = await users.user_by_username(session, username=username.strip().lower())
        if user is None:
            raise AccountError(f"no user {username}")
        await users.set_active(session, user=user, active=active, now=datetime.now(UTC))


async def reset_password(db: Database, *, username: str, password: str) -> None:
    """Give an account a new password and end its sessions and refresh tokens."""
    if problem := password_problem(password):
        raise AccountError(problem)
    async with db.session() as session:
        user = await users.user_by_username(session, username=username.strip().lower())
        if user is None:
            raise AccountError(f"no user {username}")
        now = datetime.now(UTC)
        await users.set_password_hash(session, user=user, password_hash=hash_password(password), now=now)
        await users.revoke_user_tokens(session, user_id=user.id, now=now)


async def ensure_demo_users(db: Database) -> list[tuple[DemoUser, str]]:
    """Create the demo accounts that do not exist yet; returns those created with their passwords."""
    created = []
    for demo in DEMO_USERS:
        async with db.session() as session:
            if await users.user_by_username(session, username=demo.username) is not None:
                continue
        password = new_password()
        await add_account(
            db, username=demo.username, role=demo.role, password=password, agency=demo.agency, unit=demo.unit
        )
        created.append((demo, password))
    return created

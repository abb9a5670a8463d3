"""Who is calling: staff roles, password hashes, the API's own tokens, OpenID Connect tokens and page sessions.

Access tokens are short-lived JWTs verified without a database round trip; refresh tokens and page sessions
are opaque random strings stored as their SHA-256, so logging out or disabling an account revokes them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import AppError, unauthorized
from config.settings import Settings
from store import models, users
from workflows.process import Actor, Role

log = structlog.get_logger(__name__)

ISSUER = "rongtuk"
AUDIENCE = "rongtuk-api"
_ALGORITHM = "HS256"
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
REFRESH, SESSION = "refresh", "session"


class StaffRole(StrEnum):
    """The roles a person signs in with; the process table knows fewer (see :meth:`Principal.actor`)."""

    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    AGENCY = "agency"  # agency contact point staff, bound to one agency (and optionally a unit)
    AGENCY_HEAD = "agency_head"
    AUDITOR = "auditor"  # reads everything, changes nothing
    ADMIN = "admin"  # manages users; no case work


AGENCY_ROLES = frozenset({StaffRole.AGENCY, StaffRole.AGENCY_HEAD})
_PROCESS_ROLE = {
    StaffRole.OFFICER: Role.OFFICER,
    StaffRole.SUPERVISOR: Role.SUPERVISOR,
    StaffRole.AGENCY: Role.AGENCY,
    # An agency head acts for its agency as the table's agency role; the head's own notifications and the
    # escalations to it are the agency's too.
    StaffRole.AGENCY_HEAD: Role.AGENCY,
    StaffRole.AUDITOR: Role.AUDITOR,
}


@dataclass(frozen=True)
class Principal:
    """A signed-in staff member, as every request sees them."""

    subject: str  # the user name (embedded store) or the identity provider's subject claim
    role: StaffRole
    agency: str | None = None
    unit: str | None = None
    name: str | None = None

    @property
    def actor(self) -> Actor | None:
        """The process table's actor; administrators have none (they do no case work)."""
        role = _PROCESS_ROLE.get(self.role)
        if role is None:
            return None
        return Actor(id=self.subject, role=role, agency=self.agency if role is Role.AGENCY else None)

    def public(self) -> dict[str, Any]:
        return {"username": self.subject, "role": self.role.value, "agency": self.agency, "unit": self.unit}


def invalid_token() -> AppError:
    return unauthorized(
        "Your sign-in is not valid or has expired; please sign in again.",
        "การเข้าสู่ระบบไม่ถูกต้องหรือหมดอายุแล้ว กรุณาเข้าสู่ระบบใหม่",
        code="invalid_token",
    )


def invalid_credentials() -> AppError:
    # One answer for an unknown user, a wrong password and a disabled account: nothing to probe with.
    return unauthorized(
        "The user name or password is not correct.", "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง", code="invalid_credentials"
    )


def role_problem(role: StaffRole, agency: str | None) -> str | None:
    """Why this role and agency cannot go together, or None."""
    if role in AGENCY_ROLES and not agency:
        return "agency staff and agency heads need an agency code"
    if role not in AGENCY_ROLES and agency:
        return "only agency staff and agency heads belong to an agency"
    return None


# --- passwords -----------------------------------------------------------------------------------------------

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user name is unknown, so that both answers take as long; made on first use,
    not at import (an Argon2 hash is 0.16 s of every ``rongtuk`` command's start)."""
    return _hasher.hash(secrets.token_urlsafe(16))


MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    """Argon2id hash of ``password`` with the library's current parameters."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches; never raises on a corrupt hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 256:
        return "a password may have at most 256 characters"
    return None


# --- the API's own access tokens -----------------------------------------------------------------------------


def issue_access_token(settings: Settings, principal: Principal, *, now: datetime) -> tuple[str, int]:
    """A signed access token for ``principal`` and its lifetime in seconds."""
    lifetime = settings.access_token_minutes * 60
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": principal.subject,
        "role": principal.role.value,
        "agency": principal.agency,
        "unit": principal.unit,
        "name": principal.name,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(now.timestamp()) + lifetime,
        "jti": secrets.token_urlsafe(8),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=_ALGORITHM), lifetime


def _local_principal(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
        role = StaffRole(str(claims.get("role")))
    except (jwt.PyJWTError, ValueError):
        raise invalid_token() from None
    if claims.get("typ") != "access" or role_problem(role, claims.get("agency")):
        raise invalid_token()
    return Principal(
        subject=str(claims["sub"]),
        role=role,
        agency=claims.get("agency"),
        unit=claims.get("unit"),
        name=claims.get("name"),
    )


# --- OpenID Connect -------------------------------------------------------------------------------------------


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class OidcVerifier:
    """Verifies the identity provider's tokens with its published keys (JWKS, fetched with a timeout, cached)."""

    _REFETCH_AFTER_SECONDS = 30.0  # an unknown key id refetches the set at most this often

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self) -> None:
        url = self._settings.oidc_jwks_url
        assert url is not None
        try:
            async with httpx.AsyncClient(timeout=self._settings.oidc_jwks_timeout_seconds) as client:
                response = await client.get(url)
                response.raise_for_status()
                keyset = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            # Keep serving with the keys we have; without any, nobody from the provider can sign in.
            log.warning("jwks_fetch_failed", error=type(exc).__name__)
            self._fetched_at = time.monotonic()
            return
        self._keys = {k.key_id: k for k in keyset.keys if k.key_id}
        self._fetched_at = time.monotonic()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age > self._settings.oidc_jwks_cache_seconds
            if stale or (kid not in self._keys and age > self._REFETCH_AFTER_SECONDS):
                await self._fetch()
            return self._keys.get(kid)

    async def principal(self, token: str) -> Principal:
        s = self._settings
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise invalid_token() from None
        key = await self.key(str(kid)) if kid else None
        if key is None:
            raise invalid_token()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=s.oidc_algorithms,
                audience=s.oidc_audience,
                issuer=s.oidc_issuer,
                options={"require": ["exp", "iss"], "verify_aud": s.oidc_audience is not None},
            )
        except jwt.PyJWTError:
            raise invalid_token() from None
        subject = _claim(claims, s.oidc_subject_claim) or claims.get("sub")
        raw_roles = _claim(claims, s.oidc_role_claim)
        roles = raw_roles if isinstance(raw_roles, list) else [raw_roles]
        role = next((StaffRole(r) for r in roles if r in StaffRole._value2member_map_), None)
        agency = _claim(claims, s.oidc_agency_claim)
        agency = str(agency) if agency else None
        if not subject or role is None or role_problem(role, agency):
            raise AppError(
                403,
                "no_role",
                "Your account has no Rongtuk role; ask your administrator to give you one.",
                "บัญชีของท่านยังไม่มีบทบาทในระบบร้องทุกข์ กรุณาติดต่อผู้ดูแลระบบ",
            )
        unit = _claim(claims, s.oidc_unit_claim)
        return Principal(
            subject=str(subject)[:64],
            role=role,
            agency=agency if role in AGENCY_ROLES else None,
            unit=str(unit)[:64] if unit else None,
            name=claims.get("name"),
        )


class Authenticator:
    """Turns a bearer token into a :class:`Principal`: the API's own tokens, or the identity provider's."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.oidc = OidcVerifier(settings) if settings.oidc_enabled else None

    async def principal(self, token: str) -> Principal:
        if self.oidc is not None:
            try:
                issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            except jwt.PyJWTError:
                raise invalid_token() from None
            if issuer == self.settings.oidc_issuer:
                return await self.oidc.principal(token)
        return _local_principal(self.settings, token)


# --- refresh tokens and sessions ----------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def principal_of(user: models.User) -> Principal:
    return Principal(
        subject=user.username, role=StaffRole(user.role), agency=user.agency, unit=user.unit, name=user.display_name
    )


async def sign_in(session: AsyncSession, *, username: str, password: str) -> models.User:
    """The active account these credentials open, or 401. Argon2 takes ~0.13 s of CPU by design: it runs in a
    thread (argon2-cffi lets go of the GIL), where on the event loop every sign-in held up every other request
    of the process for that long."""
    user = await users.user_by_username(session, username=username.strip().lower())
    if user is None:
        await asyncio.to_thread(lambda: verify_password(_dummy_hash(), password))
        raise invalid_credentials()
    if not await asyncio.to_thread(verify_password, user.password_hash, password) or not user.active:
        raise invalid_credentials()
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
    return user


async def new_token(session: AsyncSession, *, user: models.User, kind: str, now: datetime, lifetime: timedelta) -> str:
    """A fresh opaque refresh token or session id for ``user``; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    await users.store_token(
        session, token_hash=token_digest(token), kind=kind, user_id=user.id, now=now, expires_at=now + lifetime
    )
    return token


async def redeem(
    session: AsyncSession, *, token: str, kind: str, now: datetime
) -> tuple[models.AuthToken, models.User]:
    """The live stored token and its active user, or 401. A revoked refresh token presented again means it
    was copied: every token of that user is revoked."""
    stored = await users.token_by_hash(session, token_hash=token_digest(token), kind=kind)
    if stored is None:
        raise invalid_token()
    user = await session.get(models.User, stored.user_id)
    if stored.revoked_at is not None and kind == REFRESH and user is not None:
        log.warning("refresh_token_reused", user=user.username)
        await users.revoke_user_tokens(session, user_id=user.id, now=now)
        await session.commit()  # the revocation stands although the request fails
        raise invalid_token()
    if stored.revoked_at is not None or stored.expires_at <= now or user is None or not user.active:
        raise invalid_token()
    return stored, user

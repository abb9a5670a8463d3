"""``Idempotency-Key``: the same key from the same caller gets the same answer, and acts once.

A key is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` (on ``(scope, key)`` and on the ``update_id``
derived from it): on PostgreSQL a second transaction inserting the same key waits for the first to commit and
then sees its row; on SQLite the one write lock serialises them. The row remembers a fingerprint of the
request (a key reused for another request is refused) and, once there is one, the answer (status, body,
Location) that every retry gets back.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from activities.projection import insert_ignoring_duplicates
from api.errors import AppError
from store import models

HEADER = "Idempotency-Key"
# Printable ASCII without spaces: UUIDs, ULIDs and most clients' own formats fit.
_KEY = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")

K = models.IdempotencyKey


@dataclass(frozen=True)
class Idempotency:
    """A caller's key: ``scope`` names the caller, so two callers' keys never meet."""

    scope: str
    key: str


@dataclass(frozen=True)
class Answer:
    """What was answered to the first request with a key, given back to every retry."""

    status_code: int
    body: dict[str, Any]
    location: str | None = None


def bad_key() -> AppError:
    return AppError(
        status=422,
        code="bad_idempotency_key",
        message="The Idempotency-Key header must be 1 to 64 letters, digits or the characters _ . : -",
        message_th="ส่วนหัว Idempotency-Key ต้องมีความยาว 1 ถึง 64 ตัว ประกอบด้วยตัวอักษร ตัวเลข หรือ _ . : - เท่านั้น",
    )


def key_reused() -> AppError:
    return AppError(
        status=422,
        code="idempotency_key_reused",
        message="This Idempotency-Key was already used for a different request; use a new key for a new request.",
        message_th="รหัส Idempotency-Key นี้ถูกใช้กับคำขออื่นแล้ว กรุณาใช้รหัสใหม่สำหรับคำขอใหม่",
    )


def idempotency_of(scope: str, key: str | None) -> Idempotency | None:
    """The caller's key, checked; None when the request has none."""
    if key is None:
        return None
    if not _KEY.match(key):
        raise bad_key()
    return Idempotency(scope=scope[:80], key=key)


def fingerprint(kind: str, target: str, body: Any) -> str:
    """A digest of what was asked: the kind of request, what it was about and its body, canonically."""
    canonical = json.dumps([kind, target, body], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def update_id_for(idem: Idempotency) -> str:
    """The Temporal update id of an action sent with this key (no personal data, fixed length)."""
    return hashlib.sha256(f"{idem.scope}\n{idem.key}".encode()).hexdigest()[:48]


async def claim(
    session: AsyncSession, idem: Idempotency, *, fingerprint: str, now: datetime, **row: Any
) -> models.IdempotencyKey | None:
    """Take the key for this request (None: it is ours now) or return the row of the request that has it.

    A row of another request (its fingerprint differs) is refused with 422; so is a row that expired but was
    not purged yet, which is taken over instead.
    """
    values = key_row(idem, fingerprint=fingerprint, now=now, **row)  # ``row``: key_row's other fields
    # The row as parameters, not in the statement: the statement's compiled form is then cached.
    inserted = await session.execute(_claim_statement(session), values)
    if inserted.first() is not None:
        return None
    existing = await session.get(K, (idem.scope, idem.key), populate_existing=True)
    if existing is None:  # purged between the two statements: a rare race, answered as a conflict to retry
        raise key_in_flux()
    if existing.expires_at <= now:
        await session.execute(delete(K).where(K.scope == idem.scope, K.key == idem.key))
        await session.execute(insert_ignoring_duplicates(session, K, values, ["scope", "key"]))
        return None
    if existing.fingerprint != fingerprint:
        raise key_reused()
    return existing


def key_row(
    idem: Idempotency,
    *,
    fingerprint: str,
    kind: str,
    now: datetime,
    ttl: timedelta,
    case_id: str | None = None,
    update_id: str | None = None,
    request: dict[str, Any] | None = None,
    answer: Answer | None = None,
) -> dict[str, Any]:
    """The key's row as a claim inserts it."""
    return {
        "scope": idem.scope,
        "key": idem.key,
        "fingerprint": fingerprint,
        "kind": kind,
        "case_id": case_id,
        "update_id": update_id,
        "request": request,
        "status_code": answer.status_code if answer else None,
        "body": answer.body if answer else None,
        "location": answer.location if answer else None,
        "created_at": now,
        "expires_at": now + ttl,
    }


def _claim_statement(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    statement = _CLAIM.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # No conflict target: every unique index is an arbiter. With ``(scope, key)`` alone, PostgreSQL checks
        # the unique ``update_id`` (derived from the same key) as an ordinary index, so of two requests that
        # raced past the arbiter's check the second failed with a unique violation (a 500) instead of
        # finding the first one's row.
        statement = _CLAIM[dialect] = insert(K).on_conflict_do_nothing().returning(K.key)
    return statement


_CLAIM: dict[str, Any] = {}


def key_in_flux() -> AppError:
    return AppError(
        status=409,
        code="idempotency_key_busy",
        message="A request with this Idempotency-Key is being handled; try again in a moment with the same key.",
        message_th="คำขอที่ใช้รหัส Idempotency-Key นี้กำลังดำเนินการอยู่ กรุณาลองใหม่อีกครั้งด้วยรหัสเดิม",
        headers={"Retry-After": "1"},
    )


def answer_of(row: models.IdempotencyKey) -> Answer | None:
    """The stored answer of a key, if its first request has one yet."""
    if row.status_code is None or row.body is None:
        return None
    return Answer(row.status_code, row.body, row.location)


async def settle(session: AsyncSession, idem: Idempotency, answer: Answer) -> Answer:
    """Keep ``answer`` as the key's answer unless another request with the key kept one first; returns the
    answer every request with this key gets."""
    kept = await session.execute(
        update(K)
        .where(K.scope == idem.scope, K.key == idem.key, K.status_code.is_(None))
        .values(status_code=answer.status_code, body=answer.body, location=answer.location)
        .returning(K.key)
    )
    if kept.first() is not None:
        return answer  # ours is the answer (the usual case: one statement, not two)
    stored = (
        await session.execute(select(K.status_code, K.body, K.location).where(K.scope == idem.scope, K.key == idem.key))
    ).first()
    if stored is None or stored.status_code is None:
        return answer
    return Answer(stored.status_code, stored.body, stored.location)


async def purge(session: AsyncSession, now: datetime) -> int:
    """Forget keys past their time; returns how many."""
    result = await session.execute(delete(K).where(K.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)

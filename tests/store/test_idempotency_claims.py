"""Claiming an Idempotency-Key against the real database: requests racing with one key act once, none fails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from intake.idempotency import Idempotency, claim, update_id_for
from store import models
from store.db import Database

RACERS = 12
ROUNDS = 15


async def _claim(db: Database, idem: Idempotency, now: datetime) -> models.IdempotencyKey | None:
    async with db.session() as s:
        existing = await claim(
            s,
            idem,
            fingerprint="same-request",
            kind="action",
            now=now,
            ttl=timedelta(hours=1),
            update_id=update_id_for(idem),
            request={"action": "screen"},
        )
        await s.commit()
        return existing


async def racing_claims(db: Database, now: datetime) -> tuple[Idempotency, list[Any]]:
    """``RACERS`` claims of one new key at once: the key, and each claim's row, None (the owner) or error."""
    idem = Idempotency(scope=f"officer:{uuid.uuid4()}", key=str(uuid.uuid4()))
    return idem, await asyncio.gather(*(_claim(db, idem, now) for _ in range(RACERS)), return_exceptions=True)


async def test_racing_claims_of_one_key_give_one_owner_and_the_same_row_to_the_rest(db: Database) -> None:
    # Each request carries the update id derived from its key, which is unique as well: on PostgreSQL the
    # claim used to name (scope, key) as its only conflict target, and now and then a racer was lost to
    # a unique violation on update_id (a 500 for the caller) instead of being given the first one's row.
    now = datetime.now(UTC)
    for _ in range(ROUNDS):
        idem, results = await racing_claims(db, now)

        assert [r for r in results if isinstance(r, BaseException)] == []
        assert sum(r is None for r in results) == 1
        rows = [r for r in results if isinstance(r, models.IdempotencyKey)]
        assert len(rows) == RACERS - 1
        assert {(r.scope, r.key, r.update_id) for r in rows} == {(idem.scope, idem.key, update_id_for(idem))}
        async with db.session() as s:
            stored = await s.scalar(select(func.count()).where(models.IdempotencyKey.scope == idem.scope))
        assert stored == 1


async def test_the_first_answer_kept_is_every_request_s_answer(db: Database) -> None:
    # ``settle`` keeps its answer in one statement (UPDATE ... RETURNING) when the key has none yet, and reads
    # the kept one back only when another request kept one first: racing or late, all get the same answer.
    from intake.idempotency import Answer, settle

    idem = Idempotency(scope=f"officer:{uuid.uuid4()}", key=str(uuid.uuid4()))
    assert await _claim(db, idem, datetime.now(UTC)) is None

    async def _settle(n: int) -> Answer:
        async with db.session() as s:
            return await settle(s, idem, Answer(200, {"answer": n}))

    answers = await asyncio.gather(*(_settle(n) for n in range(RACERS)))
    assert len({str(a.body) for a in answers}) == 1, answers
    async with db.session() as s:
        row = await s.get(models.IdempotencyKey, (idem.scope, idem.key))
    assert row is not None and row.body == answers[0].body and row.status_code == 200
    late = await _settle(99)
    assert late.body == answers[0].body

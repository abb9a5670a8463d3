"""Signed outbound webhooks for partner systems (PMDU, Damrongdham centres, a province's own system).

Partners are listed in a YAML file (``RONGTUK_PARTNERS_FILE``); each one's secret comes from
``RONGTUK_PARTNER_SECRETS``. Every case event that matches a partner's filters is queued once in
``webhook_deliveries`` (a cursor over the case event log, with a look-back for events committed late), then
POSTed as JSON with an HMAC-SHA256 signature, retried with backoff, and logged in the delivery log. The
payload carries the case's facts, never the complainant's identity or words.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError
from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from activities.projection import insert_ignoring_duplicates
from config.settings import Settings
from delivery.gateways import DeliveryError, HttpPoster, PermanentError, classify_status
from delivery.outbox import FAILED, PENDING, SENDING, SENT, attempt_entry, claim_due, settle, will_retry
from store import models
from store.db import Database

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Rongtuk-Signature"
# Events committed after a later-numbered one (concurrent transactions) are still found this far back.
LOOKBACK_EVENTS = 500
W = models.WebhookDelivery
E = models.CaseEvent


class PartnerError(ValueError):
    """The partners file is not usable; the message says why."""


class Partner(BaseModel):
    """A partner system that follows cases: where to POST, and which events of which agencies' cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    url: HttpUrl
    events: frozenset[str] | None = None  # None: every event
    agencies: frozenset[str] | None = None  # None: every case; else cases with a task for one of these
    public_only: bool = True  # internal events (deadline breaches, extension requests) only if False


def load_partners(path: Path | None, secrets: Mapping[str, str]) -> list[Partner]:
    """The partners in ``path`` (none without a file); each must have a secret."""
    if path is None:
        return []
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        partners = [Partner.model_validate(item) for item in raw]
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as exc:
        raise PartnerError(f"{path}: {exc}") from None
    names = [p.name for p in partners]
    if len(set(names)) != len(names):
        raise PartnerError(f"{path}: partner names must be unique")
    missing = [n for n in names if not secrets.get(n)]
    if missing:
        raise PartnerError(f"no secret in RONGTUK_PARTNER_SECRETS for partner(s) {missing}")
    return partners


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The signature header's value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, now: int, tolerance: int = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds (for partners' use)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp=timestamp), f"t={timestamp},v1={parts.get('v1', '')}")


def payload(delivery: models.WebhookDelivery, event: models.CaseEvent, case: models.Case) -> dict[str, Any]:
    """What a partner is told of one case event: facts of the case, nothing about the person."""
    return {
        "id": f"{event.case_id}:{event.seq}",
        "delivery_id": delivery.id,
        "event": event.event,
        "case_id": event.case_id,
        "seq": event.seq,
        "from_state": event.from_state,
        "state": event.to_state,
        "at": event.at.isoformat(),
        "status": case.status,
        "category": case.category,
        "province": case.province,
        "agencies": list(case.agencies or []),
        "expected_by": case.expected_by.isoformat() if case.expected_by else None,
        "outcome": case.outcome,
    }


@dataclass
class PartnerWebhooks:
    """Queues matching case events per partner and delivers them, signed, with retries."""

    db: Database
    settings: Settings
    partners: list[Partner]
    clock: Callable[[], datetime]

    def __post_init__(self) -> None:
        self._http = HttpPoster(timeout=self.settings.gateway_timeout_seconds)
        self._by_name = {p.name: p for p in self.partners}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def queue(self, *, now: datetime, limit: int) -> int:
        """Queue the case events each partner has not been given yet; returns how many were queued."""
        total = 0
        for partner in self.partners:
            async with self.db.session() as session:
                total += await self._queue_for(session, partner, now=now, limit=limit)
        return total

    async def _queue_for(self, session: AsyncSession, partner: Partner, *, now: datetime, limit: int) -> int:
        newest = select(func.coalesce(func.max(E.id), 0)).scalar_subquery()
        # A new partner starts from now, not from the whole history. Being a write, this also takes SQLite's
        # lock before the cursor is read.
        await session.execute(
            insert_ignoring_duplicates(
                session,
                models.PartnerCursor,
                {"partner": partner.name, "first_event_id": newest, "last_event_id": newest, "updated_at": now},
                ["partner"],
            )
        )
        cursor_query = select(models.PartnerCursor).where(models.PartnerCursor.partner == partner.name)
        if not self.db.is_sqlite:
            cursor_query = cursor_query.with_for_update(skip_locked=True)
        cursor = (await session.execute(cursor_query)).scalar_one_or_none()
        if cursor is None:
            return 0  # another dispatcher is queuing for this partner right now
        top = int((await session.execute(select(func.coalesce(func.max(E.id), 0)))).scalar_one())
        conditions = [
            E.id > max(cursor.last_event_id - LOOKBACK_EVENTS, cursor.first_event_id),
            E.id <= top,
            ~exists().where(W.partner == partner.name, W.event_id == E.id),
        ]
        if partner.public_only:
            conditions.append(E.public.is_(True))
        if partner.events is not None:
            conditions.append(E.event.in_(sorted(partner.events)))
        if partner.agencies is not None:
            conditions.append(
                exists().where(
                    models.AgencyTask.case_id == E.case_id, models.AgencyTask.agency.in_(sorted(partner.agencies))
                )
            )
        events = (
            await session.execute(
                select(E.id, E.case_id, E.seq, E.event).where(*conditions).order_by(E.id).limit(limit)
            )
        ).all()
        if events:
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    W,
                    [
                        {
                            "partner": partner.name,
                            "event_id": event_id,
                            "case_id": case_id,
                            "seq": seq,
                            "event": name,
                            "created_at": now,
                            "status": PENDING,
                        }
                        for event_id, case_id, seq, name in events
                    ],
                    ["partner", "event_id"],
                )
            )
        # Everything up to ``top`` was considered unless the batch was full.
        cursor.last_event_id = max(cursor.last_event_id, events[-1][0] if len(events) == limit else top)
        cursor.updated_at = now
        return len(events)

    async def run_once(self, *, limit: int) -> int:
        """Queue new events, then claim and send a batch of due webhooks; returns how much was done."""
        now = self.clock()
        queued = await self.queue(now=now, limit=limit)
        token = str(uuid.uuid4())
        async with self.db.session() as session:
            ids = await claim_due(
                session, W, token=token, now=now, settings=self.settings, skip_locked=not self.db.is_sqlite
            )
        await asyncio.gather(*(self.send(i, token) for i in ids))
        return queued + len(ids)

    async def send(self, delivery_id: int, token: str) -> None:
        """POST one queued event to its partner and record the result."""
        async with self.db.session() as session:
            delivery = await session.get(W, delivery_id)
            assert delivery is not None
            event = await session.get(E, delivery.event_id)
            case = await session.get(models.Case, delivery.case_id)
            assert event is not None and case is not None
            body = json.dumps(payload(delivery, event, case), ensure_ascii=False).encode()
            attempt = delivery.attempts
        partner = self._by_name.get(delivery.partner)
        started = time.monotonic()
        error: DeliveryError | None = None
        status_code: int | None = None
        if partner is None:
            error = PermanentError("partner_removed")
        else:
            secret = self.settings.partner_secrets[partner.name]
            try:
                answer = await self._http.post(
                    str(partner.url),
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        SIGNATURE_HEADER: sign(secret, body, timestamp=int(time.time())),
                        "Idempotency-Key": f"webhook-{delivery_id}",
                        "X-Rongtuk-Event": delivery.event,
                    },
                )
                status_code = answer.status
                classify_status(answer.status)
            except DeliveryError as exc:
                error = exc
        duration_ms = int((time.monotonic() - started) * 1000)
        now = self.clock()
        async with self.db.session() as session:
            row = await session.get(W, delivery_id, with_for_update=not self.db.is_sqlite)
            if row is None or row.claim_token != token or row.status != SENDING:
                log.warning("webhook_claim_lost", webhook_id=delivery_id)
                return
            retry = will_retry(row, error, self.settings)
            result = SENT if error is None else "retry" if retry else FAILED
            session.add(
                attempt_entry(
                    webhook_id=row.id,
                    partner=row.partner,
                    case_id=row.case_id,
                    seq=row.seq,
                    audience="partner",
                    channel="webhook",
                    gateway="webhook",
                    at=now,
                    attempt=attempt,
                    result=result,
                    error=error,
                    status_code=status_code,
                    duration_ms=duration_ms,
                )
            )
            settle(row, error, retry=retry, now=now, settings=self.settings)
        log.info(
            "webhook_delivery",
            webhook_id=delivery_id,
            partner=delivery.partner,
            case_id=delivery.case_id,
            seq=delivery.seq,
            attempt=attempt,
            result=result,
            status_code=status_code,
            error=error.error if error else None,
        )

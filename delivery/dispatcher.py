"""The dispatcher: drains the notifications outbox outside the case workflows.

Each round claims due rows in a short transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so dispatchers in
any number of processes share the work; SQLite: the claim is a single UPDATE, serialised by its one writer),
then sends them with no transaction open, then records the round's results together in a second short
transaction (each on its own if that fails, so one bad row cannot hold back the others). The recipient's
address is read from the case at claim time and kept in memory only.

A complainant's rows for one event (one per preferred channel) are tried in the order of their preferred
channels: the first is sent, the others wait (``standby``); if it fails for good the next is tried, and when
one is sent the rest are ``skipped``. Every message stays readable in the web inbox whatever happens.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import phonenumbers
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.views import expected_date
from config.agencies import Agency, load_agencies
from config.centres import Centre, Centres, load_centres
from config.settings import Settings
from delivery.gateways import (
    DeliveryError,
    Gateway,
    Gateways,
    Outbound,
    PermanentError,
    Receipt,
    TransientError,
)
from delivery.outbox import (
    EXPIRED,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    STANDBY,
    attempt_entry,
    claim_due,
    settle,
    will_retry,
)
from delivery.templates import Facts, Language, Templates
from delivery.webhooks import Partner, PartnerWebhooks, load_partners
from store import models
from store.db import Database
from workflows.process import SETTLED_STATES, WITH_THE_CENTRE, Audience, State

log = structlog.get_logger(__name__)

N = models.Notification
# Statuses of a complainant's channel that has not been given up on yet.
_UNDECIDED = frozenset({PENDING, SENDING, STANDBY})
_LINE_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
_STAFF_HOME = "PSC"  # who handles a case with no agency, when its centre is not in the centres file


def utcnow() -> datetime:
    return datetime.now(UTC)


def public_links(base_url: str, *, tracking_code: str, case_id: str) -> dict[str, str]:
    """The pages a message points to: the tracking page, its rating form, and the staff case page (messages sent
    before these were right linked ``/track/<code>/rate`` and ``/cases/<id>``: both redirect here now)."""
    base = base_url.rstrip("/")
    return {
        "track": f"{base}/track/{tracking_code}",
        "survey": f"{base}/track/{tracking_code}#form-rate",
        "case": f"{base}/case/{case_id}",
    }


Turn = Literal["send", "standby", "skipped"]


def channel_turn(channel: str, preferred: Sequence[str], siblings: Iterable[tuple[str, str]]) -> Turn:
    """Whether a complainant's row on ``channel`` goes now, given its siblings' ``(channel, status)``: it
    waits while an earlier preferred channel is undecided and is skipped once an earlier one was sent."""
    rank = _ranker(preferred)
    earlier = [status for other, status in siblings if rank(other) < rank(channel)]
    if SENT in earlier:
        return "skipped"
    if any(status in _UNDECIDED for status in earlier):
        return "standby"
    return "send"


def _ranker(preferred: Sequence[str]) -> Callable[[str], int]:
    order = {channel: i for i, channel in enumerate(preferred)}
    # A row for a channel the complainant has since dropped goes last; web (the inbox) last of all.
    return lambda channel: order.get(channel, len(order) + (1 if channel == "web" else 0))


# A complainant's rows for one event, one per channel: (case_id, seq, audience).
Family = tuple[str, int, str]


@dataclass(frozen=True)
class Job:
    """A claimed row, ready to send: the address lives here only, never in the database or the log."""

    id: int
    token: str
    attempt: int
    case_id: str
    seq: int
    audience: str
    channel: str
    gateway: Gateway
    outbound: Outbound | None  # None: no usable address on the case
    address_error: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened when a job was sent: the gateway's receipt or the error, and how long it took."""

    job: Job
    receipt: Receipt | None
    error: DeliveryError | None
    duration_ms: int


class Dispatcher:
    """Claims due outbox rows, renders and sends them, retries, falls back and logs every attempt."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        gateways: Gateways,
        templates: Templates | None = None,
        agencies: Mapping[str, Agency] | None = None,
        partners: list[Partner] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.gateways = gateways
        self.templates = templates or Templates.load(settings.notification_templates_file)
        self.agencies = agencies if agencies is not None else load_agencies(settings.agencies_file)
        self.centres = load_centres(settings.centres_file)
        self.clock = clock
        self.lang: Language = "en" if settings.notification_language == "en" else "th"
        if partners is None:
            partners = load_partners(settings.partners_file, settings.partner_secrets)
        self.webhooks = PartnerWebhooks(db, settings, partners, clock) if partners else None

    async def aclose(self) -> None:
        """Close the gateways' connections."""
        await self.gateways.aclose()
        if self.webhooks is not None:
            await self.webhooks.aclose()

    # --- the loop ------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Deliver until ``stop`` is set (or the task is cancelled); idle rounds sleep the poll interval."""
        stop = stop or asyncio.Event()
        failures = 0
        log.info("dispatcher_started", poll_seconds=self.settings.delivery_poll_seconds)
        while not stop.is_set():
            try:
                handled = await self.run_once()
                failures = 0
            except Exception as exc:
                # The database may be restarting: keep the loop (and the worker around it) alive, back off.
                failures += 1
                handled = 0
                log.warning("dispatcher_round_failed", error=type(exc).__name__, failures=failures)
            if handled:
                continue
            delay = self.settings.delivery_poll_seconds * min(2 ** min(failures, 5), 30)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
        log.info("dispatcher_stopped")

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Deliver everything that is due now (retries due later wait); returns how many rows were handled."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.run_once()
            if not handled:
                break
            total += handled
        return total

    async def run_once(self) -> int:
        """One round: claim a batch, send it, record the results; returns how many rows it claimed."""
        jobs, claimed = await self._claim()
        if jobs:
            await self._record(list(await asyncio.gather(*(self._send(job) for job in jobs))))
        if self.webhooks is not None:
            claimed += await self.webhooks.run_once(limit=self.settings.delivery_batch_size)
        return claimed

    # --- claiming ------------------------------------------------------------------------------------------

    async def _claim(self) -> tuple[list[Job], int]:
        now = self.clock()
        token = str(uuid.uuid4())
        async with self.db.session() as session:
            ids = await claim_due(
                session, N, token=token, now=now, settings=self.settings, skip_locked=not self.db.is_sqlite
            )
            if not ids:
                return [], 0
            rows = list((await session.execute(select(N).where(N.id.in_(ids)).order_by(N.id))).scalars())
            cases = {
                c.case_id: c
                for c in (
                    await session.execute(select(models.Case).where(models.Case.case_id.in_({r.case_id for r in rows})))
                ).scalars()
            }
            families = await self._families(session, rows)
            jobs = []
            stale_before = now - timedelta(hours=self.settings.delivery_expire_hours)
            for row in rows:
                case = cases[row.case_id]
                if row.created_at < stale_before:
                    self._expire(session, row, now)
                    continue
                if row.audience == Audience.COMPLAINANT.value:
                    # The siblings are the session's own objects: a row set aside earlier in this loop is seen so.
                    siblings = [(s.channel, s.status) for s in _siblings(families, row)]
                    turn = channel_turn(row.channel, list(case.preferred_channels or []), siblings)
                    if turn != "send":
                        row.status = STANDBY if turn == "standby" else SKIPPED
                        row.claim_token = None
                        row.claimed_until = None
                        row.attempts -= 1
                        continue
                jobs.append(self._job(row, case, token))
        return jobs, len(ids)

    def _expire(self, session: AsyncSession, row: models.Notification, now: datetime) -> None:
        """News too old to send (a dispatcher that was down for days, rows from before delivery existed): it
        stays in the inbox, and the log says why it went nowhere else."""
        row.status, row.claim_token, row.claimed_until, row.last_error = EXPIRED, None, None, EXPIRED
        session.add(
            attempt_entry(
                **_identity(row),
                gateway="inbox",
                at=now,
                attempt=row.attempts,
                result=EXPIRED,
                error=PermanentError(EXPIRED),
                status_code=None,
                duration_ms=0,
            )
        )

    async def _families(
        self, session: AsyncSession, rows: Iterable[models.Notification]
    ) -> dict[Family, list[models.Notification]]:
        """Every row of the complainants' events among ``rows`` (theirs included), in one query."""
        wanted = {_family(r) for r in rows if r.audience == Audience.COMPLAINANT.value}
        if not wanted:
            return {}
        members = await session.execute(
            select(N)
            .where(
                N.case_id.in_({case_id for case_id, _, _ in wanted}),
                N.seq.in_({seq for _, seq, _ in wanted}),
                N.audience == Audience.COMPLAINANT.value,
            )
            .order_by(N.id)
        )
        families: dict[Family, list[models.Notification]] = {key: [] for key in wanted}
        for member in members.scalars():
            if (key := _family(member)) in families:
                families[key].append(member)
        return families

    def _job(self, row: models.Notification, case: models.Case, token: str) -> Job:
        gateway, address, problem = self._route(row, case)
        facts = message_facts(
            row, case, agencies=self.agencies, centres=self.centres, base_url=self.settings.public_base_url
        )
        message = self.templates.render(facts, self.lang)
        other: Language = "en" if self.lang == "th" else "th"
        outbound = None
        if address is not None:
            alternative = self.templates.render(facts, other) if gateway.name == "email" else None
            outbound = Outbound(row.id, address, message, alternative)
        return Job(
            id=row.id,
            token=token,
            attempt=row.attempts,
            case_id=row.case_id,
            seq=row.seq,
            audience=row.audience,
            channel=row.channel,
            gateway=gateway,
            outbound=outbound,
            address_error=problem,
        )

    def _route(self, row: models.Notification, case: models.Case) -> tuple[Gateway, str | None, str | None]:
        """The gateway and address for a row, or why there is no usable address."""
        if row.audience != Audience.COMPLAINANT.value:
            address = self.settings.staff_emails.get(row.recipient)
            if address and self.gateways.email_configured:
                return self.gateways.email, address, None
            return self.gateways.inbox, "", None
        gateway = self.gateways.for_channel(row.channel)
        if row.channel == "sms":
            return gateway, *_phone(case.complainant_phone)
        if row.channel == "line":
            line_id = case.complainant_line_user_id
            ok = bool(line_id and _LINE_USER_ID.match(line_id))
            return gateway, (line_id if ok else None), (None if ok else "bad_address")
        if row.channel == "email":
            email = case.complainant_email
            ok = bool(email and "@" in email)
            return gateway, (email if ok else None), (None if ok else "bad_address")
        return self.gateways.inbox, "", None

    # --- sending and recording -----------------------------------------------------------------------------

    async def _send(self, job: Job) -> Outcome:
        started = time.monotonic()
        receipt: Receipt | None = None
        error: DeliveryError | None = None
        if job.outbound is None:
            error = PermanentError(job.address_error or "bad_address")
        else:
            try:
                async with asyncio.timeout(self.settings.gateway_timeout_seconds):
                    receipt = await job.gateway.send(job.outbound)
            except DeliveryError as exc:
                error = exc
            except TimeoutError:
                error = TransientError("Timeout")
            except Exception as exc:
                # An unexpected failure in a gateway: retried like a transient one, within the attempt limit.
                error = TransientError(type(exc).__name__)
        return Outcome(job, receipt, error, int((time.monotonic() - started) * 1000))

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Record a round's results in one transaction: a handful of statements for the round instead of four
        or five per message, and on SQLite no queue of writers for its one lock. If that transaction fails,
        each result is recorded on its own, so that one bad row does not hold back the rest."""
        failure: Exception | None = None
        try:
            recorded = await self._record_together(outcomes)
        except Exception as exc:
            if len(outcomes) == 1:
                raise
            log.warning("delivery_record_round_failed", error=type(exc).__name__, results=len(outcomes))
            recorded = []
            for outcome in outcomes:
                try:
                    recorded += await self._record_together([outcome])
                except Exception as one:  # left claimed: its lease runs out and it is tried again
                    failure = failure or one
        self._log(recorded)
        if failure is not None:
            raise failure

    def _log(self, recorded: list[tuple[Outcome, str]]) -> None:
        for outcome, result in recorded:
            job, receipt, error = outcome.job, outcome.receipt, outcome.error
            log.info(
                "notification_delivery",
                notification_id=job.id,
                case_id=job.case_id,
                seq=job.seq,
                audience=job.audience,
                channel=job.channel,
                gateway=job.gateway.name,
                attempt=job.attempt,
                result=result,
                status_code=error.status_code if error else (receipt.status_code if receipt else None),
                error=error.error if error else None,
                duration_ms=outcome.duration_ms,
            )

    async def _record_together(self, outcomes: list[Outcome]) -> list[tuple[Outcome, str]]:
        now = self.clock()
        recorded: list[tuple[Outcome, str]] = []
        async with self.db.session() as session:
            query = select(N).where(N.id.in_([o.job.id for o in outcomes])).order_by(N.id)
            if not self.db.is_sqlite:
                query = query.with_for_update()
            rows = {row.id: row for row in (await session.execute(query)).scalars()}
            families = await self._families(session, rows.values())
            preferred: dict[str, list[str]] = {}
            if families:
                found = await session.execute(
                    select(models.Case.case_id, models.Case.preferred_channels).where(
                        models.Case.case_id.in_({case_id for case_id, _, _ in families})
                    )
                )
                preferred = {case_id: list(channels or []) for case_id, channels in found.all()}
            for outcome in outcomes:
                job, receipt, error = outcome.job, outcome.receipt, outcome.error
                row = rows.get(job.id)
                if row is None or row.claim_token != job.token or row.status != SENDING:
                    # The lease ran out and another dispatcher took the row over: it records the outcome.
                    log.warning("delivery_claim_lost", notification_id=job.id)
                    continue
                rank = _ranker(preferred.get(row.case_id, []))
                siblings = _siblings(families, row)
                retry = will_retry(row, error, self.settings)
                if error is None:
                    result = SENT
                elif retry:
                    result = "retry"
                else:
                    result = "fallback" if _fall_back(row, siblings, rank) else FAILED
                session.add(
                    attempt_entry(
                        **_identity(row),
                        gateway=job.gateway.name,
                        at=now,
                        attempt=job.attempt,
                        result=result,
                        error=error,
                        status_code=receipt.status_code if receipt else error.status_code if error else None,
                        duration_ms=outcome.duration_ms,
                    )
                )
                row.gateway = job.gateway.name
                settle(row, error, retry=retry, now=now, settings=self.settings)
                if error is None:
                    _skip_later(row, siblings, rank)
                recorded.append((outcome, result))
        return recorded


def _family(row: models.Notification) -> Family:
    return (row.case_id, row.seq, row.audience)


def _siblings(
    families: Mapping[Family, list[models.Notification]], row: models.Notification
) -> list[models.Notification]:
    """The other rows of a complainant's event (none for staff rows)."""
    return [s for s in families.get(_family(row), []) if s.id != row.id]


def _fall_back(row: models.Notification, siblings: list[models.Notification], rank: Callable[[str], int]) -> bool:
    """After ``row`` failed for good, wake the complainant's next preferred channel; False if none is left."""
    waiting = sorted(
        (s for s in siblings if s.status in {PENDING, STANDBY} and rank(s.channel) > rank(row.channel)),
        key=lambda s: rank(s.channel),
    )
    if not waiting:
        return False
    waiting[0].status = PENDING
    waiting[0].next_attempt_at = None
    return True


def _skip_later(row: models.Notification, siblings: list[models.Notification], rank: Callable[[str], int]) -> None:
    """Once ``row`` was sent, the complainant's later preferred channels are not used for that event."""
    for sibling in siblings:
        if sibling.status in {PENDING, STANDBY} and rank(sibling.channel) > rank(row.channel):
            sibling.status = SKIPPED


def _identity(row: models.Notification) -> dict[str, Any]:
    """What the delivery log says of a notification: which one, for which case, audience and channel."""
    return {
        "notification_id": row.id,
        "case_id": row.case_id,
        "seq": row.seq,
        "audience": row.audience,
        "channel": row.channel,
    }


def _phone(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, "bad_address"
    try:
        number = phonenumbers.parse(value, "TH")
    except phonenumbers.NumberParseException:
        return None, "bad_address"
    if not phonenumbers.is_valid_number(number):
        return None, "bad_address"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def message_facts(
    row: models.Notification,
    case: models.Case,
    *,
    agencies: Mapping[str, Agency],
    centres: Centres,
    base_url: str,
) -> Facts:
    """What the message for an outbox row may say, from the row and its case (nothing personal).

    ``{agency}`` is who has the case at the row's step: its agencies, or in a state ``WITH_THE_CENTRE`` the
    receiving centre."""
    links = public_links(base_url, tracking_code=case.tracking_code, case_id=case.case_id)
    complainant = row.audience == Audience.COMPLAINANT.value
    if complainant:
        codes = [] if row.state in WITH_THE_CENTRE else list(case.agencies or [])
    else:
        # A staff row names its own agency ("DOPA", "DOPA:head") or the centre's supervisors.
        own = row.recipient.split(":", 1)[0]
        codes = [own] if own in agencies else list(case.agencies or [])
    named: Sequence[Agency | Centre] = [agencies[c] for c in codes if c in agencies]
    if not named:
        centre = centres.get(case.centre)
        named = [centre] if centre is not None else [agencies[_STAFF_HOME]] if _STAFF_HOME in agencies else []
    try:
        settled = State(row.state) in SETTLED_STATES
    except ValueError:
        settled = False
    return Facts(
        event=row.event,
        state=row.state,
        audience=row.audience,
        case_id=case.case_id,
        # Agencies never see a confidential complainant's tracking code (as on the board).
        tracking_code="" if (case.confidential and not complainant) else case.tracking_code,
        agency={"th": ", ".join(a.name_th for a in named), "en": ", ".join(a.name_en for a in named)},
        expected_by=expected_date(row.expected_by),
        link=links["track"] if complainant else links["case"],
        survey_link=links["survey"] if complainant and settled else None,
    )


def build_dispatcher(settings: Settings, db: Database) -> Dispatcher:
    """A dispatcher with the configured gateways (the composition root for ``worker.py`` and the CLI)."""
    return Dispatcher(db, settings, gateways=Gateways.from_settings(settings))


async def run_dispatcher(settings: Settings, db: Database, stop: asyncio.Event | None = None) -> None:
    """Run the delivery loop until stopped or cancelled, closing the gateways afterwards."""
    await _run_and_close(build_dispatcher(settings, db), stop)


def start_dispatcher(settings: Settings, db: Database) -> asyncio.Task[None]:
    """Build the dispatcher now, so that a bad templates or partners file stops the process as it starts,
    and run its loop in a task of the running event loop (the worker's)."""
    return asyncio.create_task(_run_and_close(build_dispatcher(settings, db), None), name="rongtuk-delivery")


async def _run_and_close(dispatcher: Dispatcher, stop: asyncio.Event | None) -> None:
    try:
        await dispatcher.run(stop)
    finally:
        await dispatcher.aclose()

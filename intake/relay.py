"""The intake relay: starts the workflow of every complaint the API committed to the database.

The API answers 201 once the complaint (case row, intake outbox row, idempotency key) is committed; it never
waits for Temporal. A relay then starts each case's workflow with the case number as its workflow id and
``REJECT_DUPLICATE``, so a start that is repeated (a lease that ran out, two relays, a lost answer) finds the
workflow "already started" and counts that as done: a case is started exactly once.

Relays run beside the API (``kick()`` after each commit wakes it, so a case is in Temporal within a second)
and beside every worker (for what an API could not start, e.g. while Temporal was away). An action on a case
no relay has started yet does not wait: it is sent with the workflow's start (update-with-start,
:class:`CaseStart`), and the relay that gets there later finds the workflow started. They share the work
like the delivery dispatchers do: each round claims due rows under a token and a lease in one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, one UPDATE under SQLite's write lock), starts them with
no transaction open, and records the outcome only if its claim still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import TypeAdapter
from sqlalchemy import Select, and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from config.settings import Settings
from intake import idempotency
from store import models
from store.db import Database
from workflows.complaint import ComplaintWorkflow
from workflows.models import CaseInput, workflow_id_for

log = structlog.get_logger(__name__)

PENDING, STARTING, STARTED = "pending", "starting", "started"
Q = models.IntakeOutbox  # the intake queue
# "Not started yet", in the words of the partial index over those rows (the lag reads only it; a claim may). A
# constant, not a parameter: PostgreSQL's generic plan of a prepared statement (asyncpg prepares each one) can
# use a partial index only when the query's own text implies the index's predicate.
_UNSTARTED = text(models.UNSTARTED_SQL)
_INPUT = TypeAdapter(CaseInput)
# Keys and started rows are purged at most this often (by whichever relay gets there).
_PURGE_EVERY = 300.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def dump_input(inp: CaseInput) -> dict[str, Any]:
    """The typed workflow input as JSON for the outbox row."""
    data: dict[str, Any] = _INPUT.dump_python(inp, mode="json")
    return data


def load_input(data: dict[str, Any]) -> CaseInput:
    return _INPUT.validate_python(data)


@dataclass(frozen=True)
class Lag:
    """How far behind the relays are: complaints committed whose workflow is not started yet."""

    waiting: int
    oldest_seconds: float


async def relay_lag(session: AsyncSession, *, now: datetime) -> Lag:
    row = (await session.execute(lag_query())).one()
    count, oldest = int(row[0] or 0), row[1]
    if isinstance(oldest, str):  # SQLite's min() over the column comes back as text
        oldest = datetime.fromisoformat(oldest)
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return Lag(count, max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


@dataclass(frozen=True)
class CaseStart:
    """How a committed case's workflow is started, the one way it ever is: its typed input and task queue (from
    its intake row), its case number as the workflow id, and never a second run of it (``REJECT_DUPLICATE``)."""

    inp: CaseInput
    task_queue: str

    def _options(self, conflict: WorkflowIDConflictPolicy) -> dict[str, Any]:
        """The start's options, the same for both ways: only what meets a running workflow differs."""
        return {
            "id": workflow_id_for(self.inp.case_id),
            "task_queue": self.task_queue,
            "id_conflict_policy": conflict,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        }

    async def begin(self, client: Client) -> WorkflowHandle[Any, Any]:
        """Start it (a relay): a workflow that already runs is ``WorkflowAlreadyStartedError``."""
        return await client.start_workflow(
            ComplaintWorkflow.run, self.inp, **self._options(WorkflowIDConflictPolicy.FAIL)
        )

    def operation(self) -> WithStartWorkflowOperation[ComplaintWorkflow, Any]:
        """The same start sent with an action (update-with-start): a workflow already running gets the action
        instead (``USE_EXISTING``)."""
        return WithStartWorkflowOperation(
            ComplaintWorkflow.run, self.inp, **self._options(WorkflowIDConflictPolicy.USE_EXISTING)
        )


async def case_start(session: AsyncSession, case_id: str) -> CaseStart | None:
    """How to start the case's workflow, while its intake row is kept (None once purged, or for a case the
    API did not file)."""
    row = (await session.execute(select(Q.case_input, Q.task_queue).where(Q.case_id == case_id))).one_or_none()
    return CaseStart(load_input(row.case_input), row.task_queue) if row is not None else None


async def unstarted(session: AsyncSession, case_id: str) -> bool:
    """Whether the case's workflow is still waiting for a relay to start it."""
    status = (await session.execute(select(Q.status).where(Q.case_id == case_id))).scalar_one_or_none()
    return status is not None and status != STARTED


class LagCollector(Collector):
    """``/metrics``: complaints committed whose workflow is not started yet, and the oldest one's age."""

    def __init__(self, lag: Lag) -> None:
        self.lag = lag

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "rongtuk_intake_unstarted",
            "Complaints committed by the API whose case workflow no relay has started yet.",
            value=self.lag.waiting,
        )
        yield GaugeMetricFamily(
            "rongtuk_intake_relay_lag_seconds",
            "Age of the oldest complaint whose case workflow is not started yet (0: none waiting).",
            value=self.lag.oldest_seconds,
        )


async def lag_collector(session: AsyncSession, *, now: datetime) -> LagCollector:
    return LagCollector(await relay_lag(session, now=now))


def due_rows(*, now: datetime, limit: int, skip_locked: bool) -> Select[int]:
    """The ids of the oldest rows due for a start: pending (and not waiting out a retry), or claimed by a relay
    whose lease ran out; rows another relay holds locked are skipped (PostgreSQL)."""
    due = (
        select(Q.id)
        .where(
            _UNSTARTED,  # implied by what follows; said so that the partial index serves the claim
            or_(
                and_(Q.status == PENDING, or_(Q.next_attempt_at.is_(None), Q.next_attempt_at <= now)),
                and_(Q.status == STARTING, Q.claimed_until < now),  # a relay that died mid-start
            ),
        )
        .order_by(Q.id)
        .limit(limit)
    )
    return due.with_for_update(skip_locked=True) if skip_locked else due


def lag_query() -> Select[int, datetime]:
    """How many rows are not started yet, and the oldest one's commit time."""
    return select(func.count(Q.id), func.min(Q.created_at)).where(_UNSTARTED)


@dataclass(frozen=True)
class _Job:
    id: int
    case_id: str
    task_queue: str
    inp: CaseInput


class IntakeRelay:
    """Claims committed complaints and starts their workflows; any number may run at once."""

    def __init__(
        self, db: Database, client: Client, settings: Settings, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.client = client
        self.settings = settings
        self.clock = clock
        # Loops waiting for work, woken one at a time (a kick, or a sibling that found a full batch).
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._missed_kick = False  # a kick came while every loop was busy: the next to finish looks again
        self._stop = asyncio.Event()
        self._last_purge = 0.0
        # Starts in flight across this relay's loops (the baseline bench: 32 in flight saturates a server).
        self._slots = asyncio.Semaphore(settings.intake_relay_concurrency)
        self.started = 0  # workflows this relay started, for the benchmark and the tests
        self.found_started = 0  # starts answered "already started" (a lease ran out, a lost answer)

    def stop(self) -> None:
        """Finish the round at hand and stop (the loops of :func:`start_relay` then end)."""
        self._stop.set()
        while self._waiting:
            self._wake_one()

    def kick(self) -> None:
        """Wake a loop now: a complaint was just committed."""
        if not self._wake_one():
            self._missed_kick = True

    def _wake_one(self) -> bool:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False

    async def run(self, stop: asyncio.Event | None = None, *, polls: bool = True) -> None:
        """Start workflows until ``stop`` is set or the task is cancelled; backs off while Temporal or the
        database is away, and never lets a failure end the process around it.

        A loop that ``polls`` looks for work every ``intake_relay_poll_seconds`` when idle (for complaints
        other processes committed); the others wait for a kick, or for a loop that found a full batch, so an
        idle relay costs one claim a poll, not one per loop, and a kick wakes one loop, not all of them.
        """
        stop = stop or self._stop
        failures = 0
        if polls:  # one line for the relay, not one for each of its loops
            log.info(
                "intake_relay_started",
                poll_seconds=self.settings.intake_relay_poll_seconds,
                loops=self.settings.intake_relay_loops,
            )
        while not stop.is_set():
            self._missed_kick = False
            try:
                claimed, handled = await self._round()
                failures = 0 if handled >= 0 else failures + 1
                await self._purge_now_and_then()
            except Exception as exc:
                failures += 1
                claimed = handled = 0
                log.warning("intake_relay_round_failed", error=type(exc).__name__, failures=failures)
            if claimed >= self.settings.intake_relay_batch_size:
                self._wake_one()  # a full batch: there may be more, share it
            if handled > 0 or (self._missed_kick and failures == 0):
                continue
            # While Temporal is away a kick does not help: every loop waits out the backoff.
            delay: float | None = self.settings.intake_relay_poll_seconds * min(2 ** min(failures, 4), 10)
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
            woken: asyncio.Future[None] | None = None
            if failures == 0:
                woken = asyncio.get_running_loop().create_future()
                self._waiting.append(woken)
                waits.add(woken)
                if not polls:
                    delay = None
            _, pending = await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            if woken is not None:
                # Timed out (a poll) or stopped, this loop no longer waits: its future leaves the queue (a woken
                # one has left it already). Left there, an idle worker's relay (no kicks) kept one a poll.
                with contextlib.suppress(ValueError):
                    self._waiting.remove(woken)
        if polls:
            log.info("intake_relay_stopped")

    async def drain(self, *, max_rounds: int = 1000) -> int:
        """Start everything due now; returns how many workflows were started (for tests and the CLI)."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.run_once()
            if handled <= 0:
                break
            total += handled
        return total

    async def run_once(self) -> int:
        """One round: claim a batch and start it. Returns how many were started, or -1 if Temporal refused
        them all (so the loop backs off instead of spinning)."""
        return (await self._round())[1]

    async def _round(self) -> tuple[int, int]:
        """One round: how many rows it claimed, and what :meth:`run_once` returns."""
        # The database writes are shielded from cancellation (a process stopping mid-round): a transaction
        # cut in half would leave its connection checked out, holding SQLite's write lock until it is
        # collected. Shielded, each finishes (or rolls back) and returns its connection; the lease covers the
        # rest.
        jobs, token = await asyncio.shield(self._claim())
        if not jobs:
            return 0, 0
        results = await asyncio.gather(*(self._start(job) for job in jobs))
        done = [job.id for job, ok in zip(jobs, results, strict=True) if ok is None]
        failed = {job.id: error for job, error in zip(jobs, results, strict=True) if error is not None}
        await asyncio.shield(self._record(token, done, failed))
        return len(jobs), len(done) if done else -1

    async def _claim(self) -> tuple[list[_Job], str]:
        now = self.clock()
        token = str(uuid.uuid4())
        due = due_rows(now=now, limit=self.settings.intake_relay_batch_size, skip_locked=not self.db.is_sqlite)
        async with self.db.session() as session:
            claimed = await session.execute(
                update(Q)
                .where(Q.id.in_(due.scalar_subquery()))
                .values(
                    status=STARTING,
                    claim_token=token,
                    claimed_until=now + timedelta(seconds=self.settings.intake_relay_lease_seconds),
                    attempts=Q.attempts + 1,
                )
                .returning(Q.id, Q.case_id, Q.task_queue, Q.case_input)
                .execution_options(synchronize_session=False)
            )
            jobs = [_Job(r.id, r.case_id, r.task_queue, load_input(r.case_input)) for r in claimed]
        return jobs, token

    async def _start(self, job: _Job) -> str | None:
        """Start one workflow; None when it runs (started now or before), else the error's name."""
        try:
            async with self._slots, asyncio.timeout(self.settings.intake_relay_start_timeout_seconds):
                await self.start(job.inp, task_queue=job.task_queue)
            self.started += 1
        except WorkflowAlreadyStartedError:
            self.found_started += 1
            log.info("intake_already_started", case_id=job.case_id)
        except RPCError as exc:
            log.warning("intake_start_failed", case_id=job.case_id, status=exc.status.name)
            return exc.status.name
        except TimeoutError:
            log.warning("intake_start_failed", case_id=job.case_id, status="timeout")
            return "timeout"
        except RuntimeError as exc:  # "Failed client connect": Temporal unreachable
            log.warning("intake_start_failed", case_id=job.case_id, status="unreachable")
            return type(exc).__name__
        return None

    async def start(self, inp: CaseInput, *, task_queue: str) -> WorkflowHandle[Any, Any]:
        """Start one case's workflow (:meth:`CaseStart.begin`)."""
        return await CaseStart(inp, task_queue).begin(self.client)

    async def _record(self, token: str, done: list[int], failed: dict[int, str]) -> None:
        now = self.clock()
        async with self.db.session() as session:
            if done:
                await session.execute(
                    update(Q)
                    .where(Q.id.in_(done), Q.claim_token == token)
                    .values(status=STARTED, sent_at=now, claim_token=None, claimed_until=None, last_error=None)
                )
            for row_id, error in failed.items():
                # Temporal is away or busy: try again soon (the lease makes it due anyway if this is lost).
                await session.execute(
                    update(Q)
                    .where(Q.id == row_id, Q.claim_token == token)
                    .values(
                        status=PENDING,
                        claim_token=None,
                        claimed_until=None,
                        last_error=error[:64],
                        next_attempt_at=now + timedelta(seconds=self.settings.intake_relay_poll_seconds),
                    )
                )

    async def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._last_purge < _PURGE_EVERY:
            return
        self._last_purge = time.monotonic()
        await asyncio.shield(self._purge(self.clock()))

    async def _purge(self, now: datetime) -> None:
        keep = timedelta(hours=self.settings.idempotency_ttl_hours)
        async with self.db.session() as session:
            await idempotency.purge(session, now)
            await session.execute(delete(Q).where(Q.status == STARTED, Q.sent_at < now - keep))


def start_relay(db: Database, client: Client, settings: Settings) -> tuple[IntakeRelay, asyncio.Task[None]]:
    """A relay and its loops, as a task of the running event loop (the API's or a worker's). Several loops
    claim batches side by side, so one batch's slowest start does not hold up the next claim; together they
    keep at most ``intake_relay_concurrency`` starts in flight."""

    async def loops() -> None:
        await asyncio.gather(*(relay.run(polls=i == 0) for i in range(settings.intake_relay_loops)))

    relay = IntakeRelay(db, client, settings)
    return relay, asyncio.create_task(loops(), name="rongtuk-intake-relay")


async def stop_relay(relay: IntakeRelay, task: asyncio.Task[None], *, grace: float = 5.0) -> None:
    """Stop ``relay`` after its round at hand (bounded by ``grace``), so no transaction is cut in half."""
    relay.stop()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

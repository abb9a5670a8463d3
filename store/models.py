"""The SQL read model: a projection of the case workflows for the API, dashboards and reports.

Temporal history is the source of truth; every row here is written by an activity, keyed so that a retried
or replayed write changes nothing (cases by id and ``last_seq``, events by ``(case_id, seq)``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from workflows.process import OPEN_STATES, OPEN_TASK

# Literal predicates of the board's partial indexes (migration 0014). A query uses such an index only when its
# WHERE repeats the predicate word for word, so store/queries.py renders these same literals.
OPEN_CASE_STATUSES: tuple[str, ...] = tuple(sorted(str(s) for s in OPEN_STATES))
OPEN_TASK_STATUSES: tuple[str, ...] = tuple(sorted(str(s) for s in OPEN_TASK))


def status_in(column: str, values: tuple[str, ...]) -> str:
    """``column IN ('a', 'b')`` as literal SQL (the values are the process's own state codes)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend: SQLite keeps no offset, so store UTC and say so on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the read model")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A task whose agency asked for more time (ix_agency_tasks_extension_pending); a request still waits for a
# supervisor's answer while its task is open (store.queries.extension_requests_statement).
EXTENSION_PENDING_SQL = "extension_pending > 0"


# A filter column's index after the column (store/queries.py): each priority's open cases, then its ended ones, by
# deadline; the board walks the open cases of every priority before the ended ones (migration 0022).
BOARD_ORDER: tuple[str, ...] = ("priority", "ended", "due_at", "case_id")
# The filter columns with an index of their own, and what each holds after the order, to be tested there (0014):
# combined with a status or a stage, a walk and the count read only the page's rows. A category group ("roads")
# takes in its categories ("roads.potholes"): one equality too (0015).
BOARD_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("province", ("status", "stage")),
    ("stage", ("status",)),
    ("category", ("status", "stage")),
    ("category_group", ("status", "stage")),
    ("region", ("status", "stage")),
    ("centre", ("status", "stage")),
    ("kind", ("status", "stage")),
)
# Whether a case has ended, as the database computes it from the status (a generated column, migration 0022).
ENDED_SQL = f"NOT ({status_in('status', OPEN_CASE_STATUSES)})"


def category_group_of(category: str | None) -> str | None:
    """A category code's group: "roads" for "roads.potholes" and for the group code "roads" itself."""
    return category.split(".", 1)[0] if category else None


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_due_at", "status", "due_at", "case_id"),
        # The board: the open cases before the ended, urgent first, then by deadline. Each filter is an
        # equality followed by the priority, whether the case has ended and ORDER BY due_at, case_id, read as
        # ordered ranges (store/queries.py _walk; migrations 0013, 0014 and 0022). With ``ended`` ahead of the
        # deadline, the open cases of a filter value are ranges of their own: an ended case has no deadline,
        # and without it the undated open cases shared one range with every ended case of the value.
        Index("ix_cases_status_priority_due_at", "status", "priority", "ended", "due_at", "case_id"),
        Index("ix_cases_priority_due_at", "priority", "ended", "due_at", "case_id"),
        # ... with the status and stage after the order (0014): combined with either, the walk and the count
        # test them in the index and read only the page's rows.
        *(Index(f"ix_cases_{column}_due_at", column, *BOARD_ORDER, *after) for column, after in BOARD_FILTERS),
        # Tracking without the code (by citizen ID) and a LINE user's own cases look these up.
        Index("ix_cases_complainant_citizen_id", "complainant_citizen_id"),
        Index("ix_cases_complainant_line_user_id", "complainant_line_user_id"),
    )

    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(16), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), index=True)
    # Not one of the open states: computed by the database from the status (stored on PostgreSQL, virtual on
    # SQLite, where a column added later cannot be stored), so that no writer can leave it behind.
    ended: Mapped[bool] = mapped_column(Boolean, Computed(ENDED_SQL, persisted=True), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    # The group of the category (the code before its dot: "roads" for "roads.potholes", and for "roads"),
    # written with it (activities/projection.py), so that the board's group filter is an equality.
    category_group: Mapped[str | None] = mapped_column(
        String(100), default=lambda context: category_group_of(context.get_current_parameters().get("category"))
    )
    # Kind (complaint, suggestion, request, tipoff), priority (normal, urgent), receiving centre, the SLA class
    # whose allowances its deadlines count, and the region (config/regions.yaml, six regions) of its province.
    kind: Mapped[str] = mapped_column(String(16), default="complaint", server_default="complaint")
    priority: Mapped[str] = mapped_column(String(16), default="normal", server_default="normal")
    centre: Mapped[str] = mapped_column(String(32), default="PSC-1111", server_default="PSC-1111")
    sla_class: Mapped[str | None] = mapped_column(String(32))
    region: Mapped[str | None] = mapped_column(String(16))
    # Personal data: shown to staff who need it, hidden from agencies when ``confidential``; never logged.
    complainant_name: Mapped[str | None] = mapped_column(String(200))
    complainant_citizen_id: Mapped[str | None] = mapped_column(String(13))
    complainant_phone: Mapped[str | None] = mapped_column(String(32))
    complainant_email: Mapped[str | None] = mapped_column(String(320))
    complainant_line_user_id: Mapped[str | None] = mapped_column(String(64))
    preferred_channels: Mapped[list[Any]] = mapped_column(default=list)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    province: Mapped[str | None] = mapped_column(String(100))
    district: Mapped[str | None] = mapped_column(String(100))
    subdistrict: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    agencies: Mapped[list[Any]] = mapped_column(default=list)
    handler_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(index=True)  # reports: a date range reads a range (0012)
    expected_by: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None] = mapped_column(index=True)  # the follow-up job's window (followup/)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The deadline of the step the case is in now (None while the clock is paused or the case is finished);
    # the overdue and at-risk boards are range scans on (status, due_at).
    due_at: Mapped[datetime | None]
    due_rule: Mapped[str | None] = mapped_column(String(32))
    breached_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stage: Mapped[int | None] = mapped_column(Integer)  # SPSO stage 1 or 2 once it has started
    closure_reason: Mapped[str | None] = mapped_column(String(32))
    duplicate_of: Mapped[str | None] = mapped_column(String(32))
    root_cause: Mapped[str | None] = mapped_column(Text)
    action_taken: Mapped[str | None] = mapped_column(Text)
    stage1_closed_at: Mapped[datetime | None] = mapped_column(index=True)  # the SPSO report's quarters
    stage2_started_at: Mapped[datetime | None]
    stage2_closed_at: Mapped[datetime | None] = mapped_column(index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    # What the process table's guards need, so the API offers exactly the actions the workflow will accept.
    rejections: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    review_deadline: Mapped[datetime | None]
    late_review_allowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set when a transition could not be written for good (bad data, a constraint): the supervisors' board and
    # /metrics show it; a later successful write clears it.
    stuck_at: Mapped[datetime | None] = mapped_column(index=True)
    stuck_reason: Mapped[str | None] = mapped_column(String(200))


class CaseEvent(Base):
    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),
        Index("ix_case_events_event", "event"),  # breach and escalation totals for /metrics
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    seq: Mapped[int]
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_agency: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Hash chain for auditors: each row's hash covers its own content and its predecessor's hash
    # (store/chain.py), so an edited or deleted row shows.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


# agency_tasks' copies of the case's board columns: (task column, case column), index order (ix_agency_tasks_board).
BOARD_COPIES: tuple[tuple[str, str], ...] = (
    ("case_priority", "priority"),
    ("case_due_at", "due_at"),
    ("case_id", "case_id"),
    ("case_status", "status"),
    ("case_stage", "stage"),
    ("case_province", "province"),
    ("case_kind", "kind"),
    ("case_centre", "centre"),
    ("case_region", "region"),
    ("case_category", "category"),
)
BOARD_COPY: tuple[str, ...] = tuple(task for task, _ in BOARD_COPIES)


class AgencyTask(Base):
    __tablename__ = "agency_tasks"
    __table_args__ = (
        UniqueConstraint("case_id", "agency", name="uq_agency_tasks_case_agency"),
        Index("ix_agency_tasks_status_due_at_agency", "status", "due_at", "agency"),  # overdue by agency
        Index("ix_agency_tasks_agency_status_case_id", "agency", "status", "case_id"),
        # The board's agency filter: the tasks an agency still owes, in board order (the case's priority and
        # deadline), with the case's other filter columns after them so that combined filters and the
        # bounded count are read from the index alone (store/queries.py; migration 0014).
        Index(
            "ix_agency_tasks_board",
            "agency",
            *BOARD_COPY,
            "status",
            sqlite_where=text(status_in("status", OPEN_TASK_STATUSES)),
            postgresql_where=text(status_in("status", OPEN_TASK_STATUSES)),
        ),
        # The extension requests waiting for a supervisor, earliest deadline first: the few tasks that have one
        # (migration 0021; the queries say the predicate as this constant, EXTENSION_PENDING_SQL).
        Index(
            "ix_agency_tasks_extension_pending",
            "due_at",
            "case_id",
            "status",
            sqlite_where=text(EXTENSION_PENDING_SQL),
            postgresql_where=text(EXTENSION_PENDING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    agency: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    assigned_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    breached_at: Mapped[datetime | None]
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reason: Mapped[str | None] = mapped_column(Text)
    extension_pending: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    extended_by: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # 2: an investigation task of agency-led stage 2 (it replaces the agency's stage 1 row here; the timeline
    # keeps both).
    stage: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    questions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A question to the complainant waits since then; the task's clock stands still meanwhile.
    question_asked_at: Mapped[datetime | None]
    # Copies of the case's board columns (its order and filters), written with the case row in the same
    # transaction (activities/projection.py, store/board.py), so that an agency's board is one ordered range
    # of ix_agency_tasks_board: the filter is on the tasks, the order on the case.
    case_priority: Mapped[str | None] = mapped_column(String(16))
    case_due_at: Mapped[datetime | None]
    case_status: Mapped[str | None] = mapped_column(String(32))
    case_stage: Mapped[int | None] = mapped_column(Integer)
    case_province: Mapped[str | None] = mapped_column(String(100))
    case_kind: Mapped[str | None] = mapped_column(String(16))
    case_centre: Mapped[str | None] = mapped_column(String(32))
    case_region: Mapped[str | None] = mapped_column(String(16))
    case_category: Mapped[str | None] = mapped_column(String(100))


# The outbox rows a dispatcher may still claim (pending, or sending under a lease), and the predicate the partial
# indexes and the claims spell with them (migration 0017): sent rows stay for good beside them, and a claim must
# not read through those. A constant in the SQL, not parameters, so that the indexes can serve it.
DUE_STATUSES = ("pending", "sending")
DUE_SQL = f"status IN ({', '.join(repr(status) for status in DUE_STATUSES)})"


def _due_index(table: str) -> Index:
    return Index(f"ix_{table}_due", "id", postgresql_where=text(DUE_SQL), sqlite_where=text(DUE_SQL))


class OutboxRow:
    """What both outboxes (notifications, partner webhooks) keep to deliver a row: claimed by one dispatcher
    at a time under a token and a lease, tried again after a backoff (delivery/outbox.py)."""

    id: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(36))
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(64))


class Notification(OutboxRow, Base):
    """The outbox: one row per transition, audience and channel; delivery gateways drain it."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", "audience", "channel", "recipient", name="uq_notifications_key"),
        Index("ix_notifications_status", "status"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        _due_index("notifications"),
        # The staff inbox: a recipient's messages, newest first (migration 0020).
        Index("ix_notifications_recipient", "recipient", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.case_id"), index=True)
    seq: Mapped[int]
    event: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32))
    audience: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(
        String(64)
    )  # "complainant", an agency code or "supervisors": never an address
    expected_by: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Delivery (delivery/dispatcher.py): status goes pending -> sending -> sent | failed, or standby/skipped
    # for a complainant's later channels while an earlier one is tried or has worked.
    gateway: Mapped[str | None] = mapped_column(String(16))


class WebhookDelivery(OutboxRow, Base):
    """The partner webhook outbox: one row per case event and partner system that follows it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("partner", "event_id", name="uq_webhook_deliveries_partner_event"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        _due_index("webhook_deliveries"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id"))
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int]
    event: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class PartnerCursor(Base):
    """How far into the case event log each partner's webhooks have been queued."""

    __tablename__ = "partner_cursors"

    partner: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Events after ``first_event_id`` (when the partner was added) only; ``last_event_id`` moves on.
    first_event_id: Mapped[int] = mapped_column(Integer)
    last_event_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class DeliveryAttempt(Base):
    """The delivery log: one row per attempt to deliver a notification, and its result. No personal data."""

    __tablename__ = "delivery_log"
    __table_args__ = (Index("ix_delivery_log_gateway_at", "gateway", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # One of the two: a notification to a person, or a webhook call to a partner system.
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"), index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    partner: Mapped[str | None] = mapped_column(String(32))
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    seq: Mapped[int]
    audience: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    gateway: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int]
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[str] = mapped_column(String(16))  # sent | retry | failed | fallback | skipped
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(64))  # an error class, never a message that may quote data
    duration_ms: Mapped[int | None]


class DeliveryTally(Base):
    """The delivery log's attempts counted by gateway and result, kept by the database as each row is written
    (trigger ``delivery_log_tally``, migration 0018), so that ``/metrics`` sums a few rows instead of reading
    the whole log at every scrape. A counter: removing log rows does not lower it. On PostgreSQL each
    connection adds to its own ``shard`` (its backend pid mod 64), so concurrent dispatchers seldom wait on
    one row; SQLite has one writer and one shard."""

    __tablename__ = "delivery_tally"

    gateway: Mapped[str] = mapped_column(String(16), primary_key=True)
    result: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class User(Base):
    """A staff member who signs in with a password (the embedded default; OpenID Connect users have no row)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # api.auth.StaffRole
    agency: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuthToken(Base):
    """A refresh token or a page session, stored as its SHA-256 only, so a database leak signs nobody in."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "refresh" or "session"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AccessLog(Base):
    """Who read a case's personal data, when and why (PDPA): rows are only ever inserted."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    actor_agency: Mapped[str | None] = mapped_column(String(32))
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    what: Mapped[str] = mapped_column(String(32))  # "case", "history", "export"
    reason: Mapped[str | None] = mapped_column(String(200))


# The intake rows no relay has started yet, as the partial index and the queries that use it spell it.
UNSTARTED_SQL = "status <> 'started'"


class IntakeOutbox(OutboxRow, Base):
    """A complaint committed by the API whose case workflow a relay still has to start (intake/relay.py).

    Written in the same transaction as the case row, so a 201 means the complaint is durable even while
    Temporal is away; ``sent_at`` is when the workflow was started (or found already started).
    """

    __tablename__ = "intake_outbox"
    __table_args__ = (
        Index("ix_intake_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        # The rows still to start, in claim order, apart from the started rows kept for a day beside them
        # (migration 0016): the lag reads only this index, and a claim may. Queries name the predicate as written
        # here (``UNSTARTED_SQL``), so that SQLite and PostgreSQL's generic plans can use the index.
        Index(
            "ix_intake_outbox_unstarted",
            "id",
            "created_at",
            postgresql_where=text(UNSTARTED_SQL),
            sqlite_where=text(UNSTARTED_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: a read model that is lost and rebuilt from Temporal must not be held by this table.
    case_id: Mapped[str] = mapped_column(String(32), unique=True)
    task_queue: Mapped[str] = mapped_column(String(200))
    # The typed ``workflows.models.CaseInput`` as JSON (personal data, like the case row beside it).
    case_input: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """An ``Idempotency-Key`` a caller sent, with the answer it got, so a retry gets the same answer.

    ``scope`` is the caller (a staff member, a tracking code, an anonymous channel); ``fingerprint`` the
    request it was first used for. ``status_code`` is None while the first request is still at work.
    For an action, ``update_id`` is the Temporal update id (Temporal dedupes the action itself) and
    ``request`` the action, so its result can be read (and the action re-sent) from the action-request resource.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    scope: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "intake" or "action"
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    update_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status_code: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    location: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class LineConversation(Base):
    """Where a LINE user is in the intake conversation (channels/line_conversation.py), kept across restarts.

    One row per LINE user; ``draft`` holds what they have said so far (personal data: never logged) and
    ``seen_events`` the last webhook event ids, so LINE's redelivery of an event is not taken twice.
    """

    __tablename__ = "line_conversations"

    line_user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    draft: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seen_events: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime]


class Attachment(Base):
    """A file of a case (photo, PDF): where its private original and the copy others see are stored.

    Content-addressed (``sha256``), so the same file sent twice to a case is one row. The original keeps its
    metadata (a photo's GPS may be the complainant's home) and is read only by centre staff; everyone else is
    served the stripped copy at ``public_key``. No foreign key to ``cases``: a file may arrive with a complaint
    whose case row the projection has not written yet.
    """

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("case_id", "sha256", name="uq_attachments_case_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(32))  # e.g. before, after, letter, screenshot
    # Who may see it besides the centre: the complainant always sees their own; staff and agencies' files
    # are shown on the tracking page only when ``public`` (an agency's before/after photos).
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploader_role: Mapped[str] = mapped_column(String(16))
    uploader_agency: Mapped[str | None] = mapped_column(String(32))
    latitude: Mapped[float | None] = mapped_column(Float)  # from the photo's EXIF GPS (personal data)
    longitude: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime]


class FollowUp(Base):
    """The "was it fixed?" question after a closure, and the complainant's answer (followup/).

    One per closure (``closed_seq`` is the closing event's seq): a case reopened and closed again is asked
    again. ``outcome`` says what the answer did: reopened the case, or was left for a supervisor when the
    case could no longer be reopened.
    """

    __tablename__ = "followups"
    __table_args__ = (
        UniqueConstraint("case_id", "closed_seq", name="uq_followups_case_closed_seq"),
        Index("ix_followups_answer", "answer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    closed_seq: Mapped[int]
    closed_at: Mapped[datetime]
    asked_at: Mapped[datetime]
    answer: Mapped[str | None] = mapped_column(String(16))  # fixed | not_fixed
    answered_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(24))  # recorded | reopened | for_supervisor


class QueueClaim(Base):
    """Which officer holds a case of the screening queue, so officers share the queue without working twice."""

    __tablename__ = "queue_claims"

    case_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    officer_id: Mapped[str] = mapped_column(String(64), index=True)
    claimed_at: Mapped[datetime]

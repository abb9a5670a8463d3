"""One settings object for every process: environment variables ``RONGTUK_*`` and an optional ``.env``."""

from __future__ import annotations

import base64
import binascii
from datetime import date, time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sla.calendar import CompressedCalendar, WorkingCalendar

DEV_PAYLOAD_KEY = "ZGV2LW9ubHktcm9uZ3R1ay1wYXlsb2FkLWtleS0wMDA="  # base64 of 32 bytes, for dev and tests only
DEV_JWT_SECRET = "dev-only-rongtuk-jwt-secret-change-me-in-prod-0000"  # noqa: S105 (dev and tests only)
_MIN_SECRET_BYTES = 32


class Access(StrEnum):
    """Who may open an operational page (API docs, /metrics)."""

    PUBLIC = "public"
    STAFF = "staff"
    OFF = "off"


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Pooler(StrEnum):
    """What sits between the processes and PostgreSQL (``RONGTUK_DATABASE_POOLER``, docs/operations.md)."""

    # PostgreSQL itself, a session-mode pooler, or a transaction-mode one that keeps prepared statements
    # (PgBouncer 1.21 or later with ``max_prepared_statements`` set): statements are prepared once per
    # connection and kept.
    NONE = "none"
    # A transaction-mode pooler that does not keep prepared statements (PgBouncer before 1.21, or with
    # ``max_prepared_statements = 0``): consecutive transactions of one connection may run on different server
    # connections, so a statement prepared in one is not there in the next.
    TRANSACTION = "transaction"


class Settings(BaseSettings):
    """Configuration for the worker, the API and the CLI."""

    # hide_input_in_errors: a refused setting must not print the secret it was given.
    model_config = SettingsConfigDict(env_prefix="RONGTUK_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    env: Environment = Environment.DEV
    data_dir: Path = Path("data")
    database_url: str = ""
    # PostgreSQL: the longest the API and the worker wait to connect, for a statement's answer, or for a pooled
    # connection, before they answer 503 (the API) or retry (the worker), never hanging on a database that
    # stopped answering.
    database_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    # The reports and their exports read years of cases in a statement: they get a pool of their own that waits
    # this long (the SPSO table over three years took 3.7 s at 100,000 cases; bench.reports_bench).
    report_timeout_seconds: float = Field(default=600.0, gt=0, le=86400)
    # PostgreSQL: each API and worker process keeps this many connections, and opens up to this many more when
    # they are all in use, closing each of those when it is handed back (docs/operations.md, "PostgreSQL").
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    database_pool_overflow: int = Field(default=10, ge=0, le=1000)
    # PostgreSQL behind a transaction-mode pooler that does not keep prepared statements (Pooler, and
    # docs/operations.md "PostgreSQL").
    database_pooler: Pooler = Pooler.NONE
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None
    task_queue: str = "rongtuk"
    # host:port where a worker serves the Temporal SDK's Prometheus metrics (task failures, latencies, cache);
    # unset: none. One address per worker process.
    worker_metrics_address: str | None = None
    # Workflows a worker keeps in memory (its sticky cache): size it for the cases active within minutes;
    # an evicted case costs nothing until its next task, which replays its whole history first
    # (docs/operations.md, "Sticky cache"). The cache, not the open cases, bounds the worker's RSS: with
    # 10,000 cases open, 300 held the worker as deployed at 256 MiB (peak 265; 200: 235, peak 238) over a
    # ~155 MiB idle worker: ~0.2 MiB per cached workflow and ~30 MiB once it evicts (bench/memory_bench.py
    # --open, bench/results/memory-10k*.json), under the 300 MiB target with ~35 MiB to spare.
    worker_max_cached_workflows: int = Field(300, ge=0)
    # Cases upsert RongtukStatus/Agency/DueAt/Overdue; the namespace must have them (rongtuk dev registers them).
    search_attributes: bool = True
    payload_key: str = DEV_PAYLOAD_KEY
    # Compress payloads before encrypting them (every process reads both kinds whatever this says). Upgrading a
    # running deployment from a release that cannot read compressed payloads: false until every worker and API
    # replica runs this one, then true (docs/operations.md, "Releases").
    payload_compression: bool = True
    # Freeze the heap at the end of start-up so that full garbage collections stop walking it (config/heap.py);
    # unset: on everywhere but in tests, whose one process builds many apps.
    gc_freeze: bool | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Intake is committed in the database first; a relay starts each case's workflow (intake/relay.py).
    # It runs beside the API (kicked by every intake, so a case is in Temporal within a second) and beside
    # each worker (for what the API could not start); any number of relays share the work through leases.
    intake_relay_in_api: bool = True
    intake_relay_in_worker: bool = True
    intake_relay_poll_seconds: float = Field(default=1.0, gt=0)
    # Each of a relay's loops claims up to a batch at a time and starts it; at most ``concurrency`` starts are
    # in flight per relay (more only queue in Temporal's frontend and stretch every start's latency). Several
    # loops keep the pipe full: one records and claims while the others' starts are in flight.
    intake_relay_batch_size: int = Field(default=16, ge=1, le=1000)
    intake_relay_loops: int = Field(default=4, ge=1, le=16)
    intake_relay_concurrency: int = Field(default=32, ge=1, le=512)
    intake_relay_lease_seconds: float = Field(default=30.0, gt=0)
    intake_relay_start_timeout_seconds: float = Field(default=10.0, gt=0)
    # An action waits this long for the workflow's answer, then answers 202 with where to read the result.
    action_wait_seconds: float = Field(default=10.0, gt=0)
    # How long an Idempotency-Key and its answer are kept (a retry after that is a new request).
    idempotency_ttl_hours: float = Field(default=24.0, gt=0)
    # On SIGINT/SIGTERM a worker or API lets in-flight work finish this long, then exits anyway (Temporal
    # retries whatever was cut short), so a process stops promptly even while Temporal is away.
    shutdown_grace_seconds: float = 5.0
    log_format: str = "console"
    log_level: str = "INFO"
    # Before this a complaint waiting on a working day has that day as day 1 (Civil and Commercial Code s.193/3).
    office_open: time = time(8, 30)
    extra_holidays: dict[date, str] = Field(default_factory=dict)
    removed_holidays: list[date] = Field(default_factory=list)
    # Tests only (refused unless env is test): a working day lasts this many seconds and every day is one, so
    # that deadlines fall due within a fault test (sla.calendar.CompressedCalendar). Unset: the real calendar.
    test_working_day_seconds: float | None = Field(None, gt=0)
    sla_policy_file: Path | None = None
    agencies_file: Path | None = None
    traffy_csv: Path = Path("../shared/data/traffy/complaints-sample.csv")
    # Notification delivery (delivery/). A gateway left unconfigured is not used: its messages are logged
    # (without personal data) and stay in the web inbox.
    public_base_url: str = "http://127.0.0.1:8000"
    notification_templates_file: Path | None = None
    notification_language: str = "th"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Rongtuk <no-reply@rongtuk.invalid>"
    smtp_starttls: bool = True
    # Messages on the wire at once, each on a connection kept open between messages; servers limit them too
    # (Exchange Online's SMTP AUTH takes 3 per mailbox). The EHLO name: unset, this host's FQDN, looked up once.
    smtp_connections: int = Field(default=4, ge=1, le=64)
    smtp_helo_name: str | None = None
    line_channel_access_token: str | None = None
    line_api_base: str = "https://api.line.me"
    # LINE intake (channels/line_bot.py): the channel secret signs every webhook; unset, /line/webhook answers 503.
    # Photo content comes from the data host; a conversation left this long starts again.
    line_channel_secret: str | None = None
    line_data_api_base: str = "https://api-data.line.me"
    line_conversation_hours: float = Field(default=24.0, gt=0)
    line_max_photos: int = Field(default=5, ge=0, le=20)
    # Staff contact addresses by outbox recipient: an agency code, "<code>:head" or "supervisors".
    staff_emails: dict[str, str] = Field(default_factory=dict)
    gateway_timeout_seconds: float = 10.0
    delivery_in_worker: bool = True
    delivery_poll_seconds: float = 2.0
    delivery_batch_size: int = Field(default=50, ge=1, le=1000)
    delivery_max_attempts: int = Field(default=6, ge=1, le=50)
    delivery_backoff_seconds: float = Field(default=30.0, ge=0)
    delivery_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    # Partner systems (PMDU, Damrongdham centres, a province's own system) that get signed webhooks of case
    # events: a YAML list (delivery/webhooks.py); each partner's HMAC secret by name, never in the file.
    partners_file: Path | None = None
    partner_secrets: dict[str, str] = Field(default_factory=dict)
    # Older news is not sent at all (it stays in the inbox): a "deadline tomorrow" SMS days late misleads.
    delivery_expire_hours: float = Field(default=72.0, gt=0)
    # A claimed message whose dispatcher died is claimed again after this (the gateway's idempotency key
    # keeps the resend from reaching the person twice).
    delivery_lease_seconds: float = Field(default=120.0, gt=0)
    # Screening (screening/): reference files, the auto-screen policy (off by default), duplicate window.
    categories_file: Path | None = None
    regions_file: Path | None = None
    centres_file: Path | None = None  # receiving centres (config/centres.yaml)
    auto_screen: bool = False
    auto_screen_min_confidence: float = Field(0.8, ge=0, le=1)
    auto_screen_min_agency_confidence: float = Field(0.6, ge=0, le=1)
    auto_screen_never_categories: list[str] = Field(default_factory=list)
    duplicate_window_days: int = Field(90, ge=1, le=3650)
    # --- identity and access (api/auth.py) ---
    jwt_secret: str = DEV_JWT_SECRET  # signs the API's own access tokens (HS256)
    access_token_minutes: int = Field(default=15, ge=1, le=120)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    session_hours: int = Field(default=8, ge=1, le=24)  # the login page's cookie session
    # Secure cookies need HTTPS; None means "in prod only".
    cookie_secure: bool | None = None
    # OpenID Connect: set the issuer, audience and JWKS URL to accept the identity provider's tokens.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"])
    oidc_subject_claim: str = "preferred_username"
    oidc_role_claim: str = "rongtuk_role"  # dotted paths reach nested claims, e.g. "realm_access.roles"
    oidc_agency_claim: str = "rongtuk_agency"
    oidc_unit_claim: str = "rongtuk_unit"
    oidc_jwks_timeout_seconds: float = 5.0
    oidc_jwks_cache_seconds: int = 300
    # None means "public" in dev and test, "staff" in prod.
    docs_access: Access | None = None
    metrics_access: Access | None = None
    # Abuse limits on the public endpoints, per client address and minute (0 switches a limit off).
    rate_intake_per_minute: int = Field(default=20, ge=0)
    rate_tracking_per_minute: int = Field(default=120, ge=0)
    rate_citizen_action_per_minute: int = Field(default=20, ge=0)
    rate_login_per_minute: int = Field(default=10, ge=0)
    # Tracking by citizen ID and phone digits: a guess costs a request, so few per minute.
    rate_track_by_id_per_minute: int = Field(default=5, ge=0)
    # Open311 GeoReport v2 (api/routes/open311.py): clients that may POST, by name, each with its own key.
    open311_jurisdiction_id: str = "rongtuk"
    open311_api_keys: dict[str, str] = Field(default_factory=dict)
    open311_require_api_key: bool = True
    # A registered client posts for many citizens from one address: its own limit, per key, instead.
    rate_open311_client_per_minute: int = Field(default=120, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Origins allowed to call /codec (the Temporal Web UI), e.g. ["http://127.0.0.1:8233"].
    codec_cors_origins: list[str] = Field(default_factory=list)
    # --- attachments (attachments/) ---
    # "disk": content-addressed files under attachments_dir (default <data_dir>/attachments); "s3": a bucket
    # of any S3-compatible store (endpoint, keys and region below; boto3's own chain when the keys are unset).
    attachment_storage: str = "disk"
    attachments_dir: Path | None = None
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Per request; the API holds one request's files in memory while it checks them (max_bytes x max_files).
    attachment_max_files: int = Field(default=5, ge=1, le=50)
    attachment_max_per_case: int = Field(default=30, ge=1, le=500)
    # A photo's EXIF position becomes the case's place when the complaint gives none.
    attachment_gps_to_place: bool = True
    s3_bucket: str | None = None
    s3_prefix: str = "attachments/"
    s3_endpoint_url: str | None = None
    s3_region: str = "ap-southeast-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_timeout_seconds: float = Field(default=10.0, gt=0)
    # --- email intake (intake_channels/email.py) ---
    # Mail to this address becomes a complaint: received by the SMTP listener of the embedded set (port 0:
    # off) and/or fetched by IMAP polling when imap_host is set.
    email_intake_address: str | None = None
    email_intake_smtp_host: str = "127.0.0.1"
    email_intake_smtp_port: int = Field(default=0, ge=0, le=65535)
    email_intake_max_bytes: int = Field(default=15 * 1024 * 1024, ge=1024)
    imap_host: str | None = None
    imap_port: int = 993
    imap_ssl: bool = True
    imap_user: str | None = None
    imap_password: str | None = None
    imap_folder: str = "INBOX"
    imap_poll_seconds: float = Field(default=60.0, gt=0)
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    # --- "was it fixed?" (followup/) ---
    # Days after a closure the complainant is asked whether the problem is fixed (0: never asked).
    followup_after_days: float = Field(default=28.0, ge=0)
    # Closures older than that plus this are not asked any more: a job that was away longer, or a database older
    # than the follow-ups, does not ask about closures of months ago; and each run reads only these days' closures.
    followup_window_days: float = Field(default=14.0, gt=0)
    followup_poll_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in {"console", "json"}:
            raise ValueError("log_format must be 'console' or 'json'")
        return value

    @field_validator("attachment_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value not in {"disk", "s3"}:
            raise ValueError("attachment_storage must be 'disk' or 's3'")
        return value

    @field_validator("notification_language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in {"th", "en"}:
            raise ValueError("notification_language must be 'th' or 'en'")
        return value

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'rongtuk.db'}"
        prod = self.env is Environment.PROD
        if prod:
            _refuse_weak_payload_key(self.payload_key)
            _refuse_weak_jwt_secret(self.jwt_secret)
            if self.log_format != "json":
                self.log_format = "json"
        default_access = Access.STAFF if prod else Access.PUBLIC
        self.docs_access = self.docs_access or default_access
        self.metrics_access = self.metrics_access or default_access
        if self.cookie_secure is None:
            self.cookie_secure = prod
        if self.test_working_day_seconds is not None and self.env is not Environment.TEST:
            raise ValueError("RONGTUK_TEST_WORKING_DAY_SECONDS is for tests only: it needs RONGTUK_ENV=test")
        if self.attachment_storage == "s3" and not self.s3_bucket:
            raise ValueError("attachment_storage 's3' needs RONGTUK_S3_BUCKET")
        return self

    @property
    def attachment_root(self) -> Path:
        """Where the disk storage keeps attachments."""
        return self.attachments_dir or self.data_dir / "attachments"

    @property
    def freezes_heap(self) -> bool:
        """Whether a process freezes its heap at the end of start-up (``gc_freeze``; unset: not in tests)."""
        return self.gc_freeze if self.gc_freeze is not None else self.env != "test"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_jwks_url)

    def calendar(self) -> WorkingCalendar:
        """The working-day calendar with this deployment's extra and removed holidays."""
        if self.test_working_day_seconds is not None:
            return CompressedCalendar(self.test_working_day_seconds, office_open=self.office_open)
        return WorkingCalendar(
            extra_holidays=self.extra_holidays,
            removed_holidays=self.removed_holidays,
            office_open=self.office_open,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def temporal_connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect`` beyond the address: namespace, TLS, API key."""
        kwargs: dict[str, Any] = {"namespace": self.temporal_namespace}
        if self.temporal_tls or self.temporal_tls_cert or self.temporal_api_key:
            from temporalio.service import TLSConfig

            if self.temporal_tls_cert and self.temporal_tls_key:
                kwargs["tls"] = TLSConfig(
                    client_cert=self.temporal_tls_cert.read_bytes(),
                    client_private_key=self.temporal_tls_key.read_bytes(),
                )
            else:
                kwargs["tls"] = True
        if self.temporal_api_key:
            kwargs["api_key"] = self.temporal_api_key
        return kwargs


def _weak_bytes(raw: bytes) -> bool:
    """All one byte value (zeros, "aaaa...") or shorter than a 256-bit key."""
    return len(raw) < _MIN_SECRET_BYTES or len(set(raw)) <= 2


def _refuse_weak_payload_key(key: str) -> None:
    # Messages name the variable, never its value: settings errors end up in logs and terminals.
    if key == DEV_PAYLOAD_KEY:
        raise ValueError("RONGTUK_PAYLOAD_KEY must be set to a secret key outside dev and test")
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("RONGTUK_PAYLOAD_KEY must be 32 random bytes, base64-encoded") from None
    if len(raw) != _MIN_SECRET_BYTES or _weak_bytes(raw):
        raise ValueError("RONGTUK_PAYLOAD_KEY must be 32 random bytes, base64-encoded (this one is weak)")


def _refuse_weak_jwt_secret(secret: str) -> None:
    if secret == DEV_JWT_SECRET:
        raise ValueError("RONGTUK_JWT_SECRET must be set to a secret outside dev and test")
    if _weak_bytes(secret.encode()):
        raise ValueError("RONGTUK_JWT_SECRET must be at least 32 random bytes (this one is weak)")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

"""One settings object for every process: environment variables ``RONGTUK_*`` and an optional ``.env``."""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sla.calendar import WorkingCalendar

DEV_PAYLOAD_KEY = "ZGV2LW9ubHktcm9uZ3R1ay1wYXlsb2FkLWtleS0wMDA="  # base64 of 32 bytes, for dev and tests only


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Settings(BaseSettings):
    """Configuration for the worker, the API and the CLI."""

    model_config = SettingsConfigDict(env_prefix="RONGTUK_", env_file=".env", extra="ignore")

    env: Environment = Environment.DEV
    data_dir: Path = Path("data")
    database_url: str = ""
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: str | None = None
    task_queue: str = "rongtuk"
    # Cases upsert RongtukStatus/Agency/DueAt/Overdue; the namespace must have them (rongtuk dev registers them).
    search_attributes: bool = True
    payload_key: str = DEV_PAYLOAD_KEY
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    intake_wait_seconds: float = 10.0
    log_format: str = "console"
    log_level: str = "INFO"
    office_close: time = time(16, 30)
    extra_holidays: dict[date, str] = Field(default_factory=dict)
    removed_holidays: list[date] = Field(default_factory=list)
    sla_policy_file: Path | None = None
    agencies_file: Path | None = None
    traffy_csv: Path = Path("../shared/data/traffy/complaints-sample.csv")
    # Screening (screening/): reference files, the auto-screen policy (off by default), duplicate window.
    categories_file: Path | None = None
    regions_file: Path | None = None
    auto_screen: bool = False
    auto_screen_min_confidence: float = Field(0.8, ge=0, le=1)
    auto_screen_min_agency_confidence: float = Field(0.6, ge=0, le=1)
    auto_screen_never_categories: list[str] = Field(default_factory=list)
    duplicate_window_days: int = Field(90, ge=1, le=3650)

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in {"console", "json"}:
            raise ValueError("log_format must be 'console' or 'json'")
        return value

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'rongtuk.db'}"
        if self.env is Environment.PROD and self.payload_key == DEV_PAYLOAD_KEY:
            raise ValueError("RONGTUK_PAYLOAD_KEY must be set to a secret key outside dev and test")
        if self.env is Environment.PROD and self.log_format != "json":
            self.log_format = "json"
        return self

    def calendar(self) -> WorkingCalendar:
        """The working-day calendar with this deployment's extra and removed holidays."""
        return WorkingCalendar(
            extra_holidays=self.extra_holidays,
            removed_holidays=self.removed_holidays,
            office_close=self.office_close,
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


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

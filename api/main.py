"""The API application: composition root for the HTTP side (JSON API and, later, console pages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from temporalio.client import Client

from api.errors import install_error_handlers
from api.routes import board, cases, complaints, deliveries, inbox, public, screening
from config.agencies import load_agencies
from config.logging import configure_logging
from config.settings import Settings, get_settings
from config.temporal import connect
from sla.policy import load_policy
from store.db import Database


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and Temporal client, production reads the environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(fmt=settings.log_format, level=settings.log_level)
        app.state.settings = settings
        app.state.db = Database(settings.database_url)
        app.state.temporal = temporal or await connect(settings, lazy=True)
        app.state.agencies = load_agencies(settings.agencies_file)
        app.state.policy = load_policy(settings.sla_policy_file)
        app.state.calendar = settings.calendar()
        try:
            yield
        finally:
            await app.state.db.dispose()

    app = FastAPI(
        title="Rongtuk",
        summary="Durable complaint handling for Thailand's government complaint centres",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(complaints.router)
    app.include_router(public.router)
    app.include_router(board.router)
    app.include_router(board.metrics_router)
    app.include_router(cases.router)
    app.include_router(deliveries.router)
    app.include_router(inbox.router)
    app.include_router(screening.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app

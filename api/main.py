"""The API application: composition root for the HTTP side (JSON API and, later, console pages)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fontpkg_noto_sans_thai
import swagger_ui_bundle
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from activities.sla import SlaActivities
from api.auth import Authenticator
from api.errors import install_error_handlers
from api.limits import RateLimiter
from api.middleware import GuardMiddleware
from api.routes import (
    attachments,
    audit,
    audit_pages,
    auth,
    board,
    cases,
    citizen,
    complaints,
    deliveries,
    followup,
    inbox,
    line,
    lookup,
    officer_intake,
    open311,
    ops,
    pages,
    public,
    reports,
    screening,
    staff,
)
from api.service import IntakeDesk
from channels.line_api import LineApi
from channels.line_bot import LineBot
from channels.places import GeoThaiPlaces
from config.agencies import load_agencies
from config.centres import load_centres
from config.heap import after_start_up
from config.logging import configure_logging
from config.reference import category_classes
from config.settings import Settings, get_settings
from config.temporal import connect
from intake.relay import start_relay, stop_relay
from screening.duplicates import IndexKeeper
from screening.service import ScreenerKeeper
from sla.policy import load_policy
from store.db import open_database


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and Temporal client, production reads the environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(fmt=settings.log_format, level=settings.log_level)
        app.state.settings = settings
        app.state.db = open_database(settings, timeout=settings.database_timeout_seconds)
        # The reports' own small pool, with the longer wait a report over years needs (api.deps.ReportSessionDep).
        app.state.report_db = open_database(settings, timeout=settings.report_timeout_seconds, pool=(2, 3))
        app.state.temporal = temporal or await connect(settings, lazy=True)
        app.state.agencies = load_agencies(settings.agencies_file)
        app.state.policy = load_policy(settings.sla_policy_file)
        app.state.centres = load_centres(settings.centres_file)
        app.state.calendar = settings.calendar()
        app.state.authenticator = Authenticator(settings)
        app.state.rate_limiter = RateLimiter()
        # Intake commits to the database; this process's relay starts the workflows right after each commit
        # (kicked), and relays beside the workers catch up on anything left (intake/relay.py).
        relay, relay_task = None, None
        if settings.intake_relay_in_api:
            relay, relay_task = start_relay(app.state.db, app.state.temporal, settings)
        app.state.relay = relay
        app.state.intake = IntakeDesk(
            db=app.state.db,
            settings=settings,
            sla=SlaActivities(app.state.calendar, app.state.policy, category_classes(settings)),
            relay=relay,
        )
        line_api = LineApi(settings)
        line_api.warm_up()
        app.state.line_bot = LineBot(
            settings=settings,
            db=app.state.db,
            intake=app.state.intake,
            api=line_api,
            places=GeoThaiPlaces(),
            agencies=app.state.agencies,
        )
        # Screening (api/routes/screening.py): the model and the duplicate index are loaded on first use.
        app.state.screener = ScreenerKeeper(settings)
        app.state.duplicate_index = IndexKeeper(app.state.db, window_days=settings.duplicate_window_days)
        after_start_up(settings)
        try:
            yield
        finally:
            if relay is not None and relay_task is not None:
                await stop_relay(relay, relay_task)
            await app.state.line_bot.api.aclose()
            await app.state.duplicate_index.close()
            await app.state.screener.close()
            await app.state.db.dispose()
            await app.state.report_db.dispose()

    app = FastAPI(
        title="Rongtuk",
        summary="Durable complaint handling for Thailand's government complaint centres",
        version="0.1.0",
        lifespan=lifespan,
        # Served by api/routes/pages.py instead: local Swagger UI assets, and access by configuration.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    install_error_handlers(app, page=pages.error_page)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hsts=bool(settings.cookie_secure),
        # Room for the files of one request and the form around them; each file has its own limit.
        upload_body_bytes=settings.attachment_max_bytes * settings.attachment_max_files + settings.max_body_bytes,
        upload_path=attachments.is_upload_path,
    )
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(citizen.router)
    app.include_router(staff.router)
    app.include_router(audit_pages.router)
    app.include_router(ops.router)
    app.include_router(ops.pages_router)
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")
    # The Thai web font ships in a wheel (OFL-1.1): pages load it from here, never from the internet.
    fonts = Path(fontpkg_noto_sans_thai.__file__).parent / "files"
    app.mount("/static/fonts", StaticFiles(directory=fonts), name="fonts")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(attachments.router)  # before complaints and cases: more specific paths
    app.include_router(officer_intake.router)
    app.include_router(followup.router)
    app.include_router(complaints.router)
    app.include_router(complaints.reference_router)
    app.include_router(lookup.router)  # before public: /track/by-citizen-id is not a tracking code
    app.include_router(public.router)
    app.include_router(board.router)
    app.include_router(board.metrics_router, dependencies=[Depends(pages.ops_gate("metrics_access"))])
    app.include_router(audit.router)  # before cases: /cases/{id}/history is more specific than /cases/{id}
    app.include_router(audit.codec_router)
    app.include_router(cases.router)
    app.include_router(deliveries.router)
    app.include_router(inbox.router)
    app.include_router(screening.router)
    app.include_router(line.router)
    app.include_router(open311.router)
    app.include_router(reports.router)
    if settings.codec_cors_origins:
        # The Temporal Web UI calls the codec from its own origin, with the user's token.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.codec_cors_origins,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            allow_credentials=True,
        )

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    return app

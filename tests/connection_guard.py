"""The rule "a request holds one database connection at a time, and none while it waits on Temporal"
(docs/operations.md), checked on every request the API tests make.

A request that takes a second pooled connection while it holds one stalls once as many such requests are in
flight as the pool has connections (each holds one and waits for another until the pool's timeout: 503s), and
behind a transaction-mode pooler it needs two of the pooler's few server connections. A request that waits on
Temporal while it holds one keeps it idle in a transaction for as long as Temporal takes. Both were found the
hard way (api/casework.py, ``_release``); :func:`guarded` makes every API test a check of the rule.

- The app is called through :func:`guarded`, which gives each HTTP request a record of the connections it
  holds (a context variable: SQLAlchemy runs its pool's events in the request's context).
- :func:`watch` follows the checkouts and checkins of the app's pools (its read model's and its reports').
- :func:`watched_client` wraps the app's Temporal client; each call checks that the request holds none.

A breach is kept (the request, what it did, where in our code) and :meth:`Guard.check` fails the test.
"""

from __future__ import annotations

import contextvars
import inspect
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, Interceptor, OutboundInterceptor

ROOT = Path(__file__).resolve().parent.parent

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[MutableMapping[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


@dataclass
class _Request:
    what: str
    held: set[int] = field(default_factory=set)


_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("guarded_request", default=None)


def _where() -> str:
    """Our code's frames (not the libraries', not this module's) in the current stack, innermost first. A pool's
    event runs in a greenlet (SQLAlchemy's asyncio bridge) whose stack ends at the bridge: the awaiting code's
    frames are the parent greenlet's."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)
    current = greenlet.getcurrent()
    while frame is not None or current is not None:
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        current = current.parent if current is not None else None
        frame = current.gr_frame if current is not None else None
    ours = [
        f"{Path(f.f_code.co_filename).relative_to(ROOT)}:{f.f_lineno} {f.f_code.co_name}"
        for f in frames
        if f.f_code.co_filename.startswith(str(ROOT))
        and "/.venv/" not in f.f_code.co_filename
        and not f.f_code.co_filename.endswith("connection_guard.py")
    ]
    return " <- ".join(ours[:6])


@dataclass
class Guard:
    breaches: list[str] = field(default_factory=list)
    # Each checked-out connection (its pool record) and the request holding it.
    _owners: dict[int, _Request] = field(default_factory=dict)

    def guarded(self, app: ASGIApp) -> ASGIApp:
        """``app`` with each HTTP request's connections recorded."""

        async def call(
            scope: MutableMapping[str, Any],
            receive: Callable[[], Awaitable[Any]],
            send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
        ) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            token = _REQUEST.set(_Request(f"{scope['method']} {scope['path']}"))
            try:
                await app(scope, receive, send)
            finally:
                _REQUEST.reset(token)

        return call

    def watch(self, engine: AsyncEngine) -> None:
        """Follow ``engine``'s pool (listeners added last, after the pool's own checks of a connection)."""
        event.listen(engine.sync_engine, "checkout", self._checkout)
        event.listen(engine.sync_engine, "checkin", self._checkin)

    def watch_app(self, app: Any) -> None:
        """Follow the pools of ``app`` (started: its lifespan opens them): the read model's and the reports'."""
        self.watch(app.state.db.engine)
        self.watch(app.state.report_db.engine)

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        request = _REQUEST.get()
        if request is None:  # the app's own tasks (the relay, the duplicate index): not a request's
            return
        if request.held - {id(record)}:
            self.breaches.append(f"{request.what} took a second connection: {_where()}")
        request.held.add(id(record))
        self._owners[id(record)] = request

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        if (request := self._owners.pop(id(record), None)) is not None:
            request.held.discard(id(record))

    def temporal_call(self, name: str) -> None:
        request = _REQUEST.get()
        if request is not None and request.held:
            self.breaches.append(f"{request.what} called Temporal ({name}) holding a connection: {_where()}")

    def watched_client(self, client: Client) -> Client:
        """``client``, each of its calls checked by :meth:`temporal_call`."""
        config = client.config()
        config["interceptors"] = [*config["interceptors"], _Interceptor(self)]
        return Client(**config)

    def check(self) -> None:
        assert not self.breaches, "a request broke the one-connection rule:\n" + "\n".join(dict.fromkeys(self.breaches))


class _Interceptor(Interceptor):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next, self.guard)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, guard: Guard) -> None:
        super().__init__(next)
        self.guard = guard


def _checked(name: str, coroutine: bool) -> Callable[..., Any]:
    if coroutine:

        async def call_async(self: _Outbound, input: Any) -> Any:
            self.guard.temporal_call(name)
            return await getattr(self.next, name)(input)

        return call_async

    def call(self: _Outbound, input: Any) -> Any:
        self.guard.temporal_call(name)
        return getattr(self.next, name)(input)

    return call


for _name, _method in vars(OutboundInterceptor).items():
    if not _name.startswith("_") and callable(_method):
        setattr(_Outbound, _name, _checked(_name, inspect.iscoroutinefunction(_method)))

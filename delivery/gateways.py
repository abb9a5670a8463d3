"""The ways a message leaves: an SMS HTTP gateway, LINE push, SMTP email, and the web inbox.

Each gateway sends one message or raises ``TransientError`` (try again later) or ``PermanentError`` (this
channel will not work for this message). None of them logs an address or a message text.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.policy import SMTPUTF8, compat32
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Protocol

import aiohttp
import aiosmtplib
import structlog
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from config.settings import Settings
from delivery.templates import Message

log = structlog.get_logger(__name__)

# LINE wants the retry key as a UUID; derived from the notification id so every retry carries the same one.
_LINE_RETRY_NAMESPACE = uuid.UUID("6f1c3e52-0b7a-4c1e-9a43-7f0d5d2b8e11")
LINE_TEXT_LIMIT = 5000
# How long an SMTP connection is kept unused (below most servers' idle timeouts), and how long the EHLO name
# may take to look up (``socket.getfqdn``, a DNS query) when ``smtp_helo_name`` does not give it.
SMTP_IDLE_SECONDS = 30.0
SMTP_HELO_LOOKUP_SECONDS = 2.0


@dataclass(frozen=True)
class Outbound:
    """One message for one address. ``notification_id`` is the idempotency key every gateway is given."""

    notification_id: int
    address: str
    message: Message
    # Email carries the message in both languages: an address says nothing about which one its reader prefers.
    alternative: Message | None = None


@dataclass(frozen=True)
class Receipt:
    status_code: int | None = None


class DeliveryError(Exception):
    """A send that did not work; ``error`` is a class name or a short code, never text that may quote data."""

    transient = True

    def __init__(self, error: str, *, status_code: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code
        self.retry_after = retry_after


class TransientError(DeliveryError):
    transient = True


class PermanentError(DeliveryError):
    transient = False


def classify_status(status: int, *, retry_after: float | None = None) -> None:
    """Raise for an HTTP status that is not a success: 408, 429 and 5xx may pass, other 4xx will not."""
    if 200 <= status < 300:
        return
    if status in {408, 425, 429} or status >= 500:
        raise TransientError(f"http_{status}", status_code=status, retry_after=retry_after)
    raise PermanentError(f"http_{status}", status_code=status)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


class Gateway(Protocol):
    name: str

    async def send(self, out: Outbound) -> Receipt: ...

    async def aclose(self) -> None: ...


class InboxGateway:
    """The citizen's and staff's web inbox: the outbox row itself, shown on the tracking and case pages."""

    name = "inbox"

    async def send(self, out: Outbound) -> Receipt:
        return Receipt()

    async def aclose(self) -> None:
        return None


class LogGateway:
    """The embedded default for a channel with no gateway configured: says so in the log, keeps the inbox."""

    name = "log"

    def __init__(self, channel: str) -> None:
        self.channel = channel

    async def send(self, out: Outbound) -> Receipt:
        log.info("notification_not_sent_no_gateway", notification_id=out.notification_id, channel=self.channel)
        return Receipt()

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    retry_after: float | None


class HttpPoster:
    """POSTs to gateways and partners over kept-alive connections, each bounded by ``timeout`` seconds.

    aiohttp rather than httpx: on this machine a POST to a local server costs 0.13-0.14 ms of CPU with aiohttp
    and 0.76-0.80 ms with httpx (server included), and the dispatcher sends every message of every case. The
    session is made on first use (it belongs to the running event loop). A connection that fails, times out or
    is cut is a ``TransientError``.

    The proxy comes from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), looked up once for
    each scheme and host by aiohttp's own rule. With ``trust_env`` the session would look it up again for every
    request, and read ``~/.netrc`` too, each in a thread of its own; a netrc entry for a gateway's host would
    even make every POST that carries its bearer token fail."""

    def __init__(self, *, timeout: float, headers: Mapping[str, str] | None = None) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None], tuple[URL | None, str | None]] = {}

    async def _proxy(self, url: URL) -> tuple[URL | None, str | None]:
        """The proxy for ``url``'s scheme and host, and its ``Proxy-Authorization`` (or Nones)."""
        key = (url.scheme, url.host)
        if key not in self._proxies:
            try:
                proxy, auth = await asyncio.to_thread(get_env_proxy_for_url, url)
                self._proxies[key] = (proxy, auth.encode() if auth else None)
            except LookupError:  # no proxy for this scheme, or NO_PROXY names the host
                self._proxies[key] = (None, None)
        return self._proxies[key]

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> HttpAnswer:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        target = URL(url)
        proxy, credentials = await self._proxy(target)
        proxy_headers = None
        if credentials is not None:
            # Through an HTTPS tunnel the proxy reads them from the CONNECT; a plain HTTP request carries them
            # itself (aiohttp sends ``proxy_headers`` with a CONNECT only). Fresh dicts: aiohttp adds to them.
            if target.scheme == "https":
                proxy_headers = {"Proxy-Authorization": credentials}
            else:
                headers = {**headers, "Proxy-Authorization": credentials}
        try:
            async with self._session.post(
                target, data=body, headers=headers, proxy=proxy, proxy_headers=proxy_headers
            ) as response:
                await response.read()
                return HttpAnswer(response.status, _retry_after(response.headers.get("Retry-After")))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(type(exc).__name__) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def json_body(value: object) -> bytes:
    """A request's JSON body: UTF-8, compact."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class SmsGateway:
    """An HTTP SMS gateway: JSON POST with a bearer token and the notification id as ``Idempotency-Key``."""

    name = "sms"

    def __init__(self, url: str, token: str | None, *, timeout: float) -> None:
        self._url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = HttpPoster(timeout=timeout, headers=headers)

    async def send(self, out: Outbound) -> Receipt:
        answer = await self._http.post(
            self._url,
            body=json_body({"to": out.address, "text": out.message.text, "reference": str(out.notification_id)}),
            headers={"Content-Type": "application/json", "Idempotency-Key": str(out.notification_id)},
        )
        classify_status(answer.status, retry_after=answer.retry_after)
        return Receipt(answer.status)

    async def aclose(self) -> None:
        await self._http.aclose()


class LineGateway:
    """LINE push messages through the Messaging API (``line-bot-sdk`` v3), host configurable for tests."""

    name = "line"

    def __init__(self, access_token: str, *, api_base: str, timeout: float) -> None:
        self._token = access_token
        self._api_base = api_base.rstrip("/")
        self._timeout = timeout
        self._client: object | None = None

    def _api(self) -> object:
        # The SDK's client opens an aiohttp session, which needs the running loop: made on first use.
        if self._client is None:
            from linebot.v3.messaging import AsyncApiClient, Configuration

            self._client = AsyncApiClient(Configuration(host=self._api_base, access_token=self._token))
        return self._client

    async def send(self, out: Outbound) -> Receipt:
        from linebot.v3.messaging import AsyncMessagingApi, PushMessageRequest, TextMessage
        from linebot.v3.messaging.exceptions import ApiException

        api = AsyncMessagingApi(self._api())
        request = PushMessageRequest(to=out.address, messages=[TextMessage(text=out.message.text[:LINE_TEXT_LIMIT])])
        retry_key = str(uuid.uuid5(_LINE_RETRY_NAMESPACE, str(out.notification_id)))
        try:
            await api.push_message(request, x_line_retry_key=retry_key, _request_timeout=self._timeout)
        except ApiException as exc:
            if exc.status == 409:
                # LINE answers 409 to a retry key it has already accepted: the message went out before.
                return Receipt(409)
            retry_after = _retry_after(dict(exc.headers or {}).get("Retry-After"))
            classify_status(int(exc.status or 0) or 500, retry_after=retry_after)
            raise  # classify_status raised for every non-2xx; unreachable
        except (OSError, TimeoutError) as exc:
            raise TransientError(type(exc).__name__) from None
        except Exception as exc:
            # aiohttp's client errors (refused, reset, bad answer) without importing aiohttp for their names.
            if type(exc).__module__.startswith("aiohttp"):
                raise TransientError(type(exc).__name__) from None
            raise
        return Receipt(200)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()  # type: ignore[attr-defined]
            self._client = None


# Messages on the wire: CRLF line ends, headers as given (see EmailGateway.build).
_WIRE = compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class Email:
    """One email as sent: the envelope's sender and recipient, and the message's bytes."""

    sender: str
    recipient: str
    content: bytes
    smtputf8: bool = False

    async def send(self, client: aiosmtplib.SMTP) -> None:
        options = ["SMTPUTF8"] if self.smtputf8 else []
        await client.sendmail(self.sender, [self.recipient], self.content, mail_options=options)


class EmailGateway:
    """Email over SMTP (``aiosmtplib``); the Message-ID is derived from the notification id."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._user = settings.smtp_user
        self._password = settings.smtp_password
        name, self._sender = parseaddr(settings.smtp_from)
        self._from_header = formataddr((name, self._sender), charset="utf-8")
        self._starttls = settings.smtp_starttls
        self._timeout = settings.gateway_timeout_seconds
        self._helo_name = settings.smtp_helo_name
        self._helo_lookup = asyncio.Lock()
        # At most ``smtp_connections`` messages are on the wire at once, each on a connection of its own, and a
        # connection is kept open between messages (with when it was last used): a new one costs a TCP connect,
        # EHLO, STARTTLS and AUTH, several times the work of the message itself. A message waits for a free
        # connection within its send's time limit. Mail servers limit connections per client too.
        self._slots = asyncio.Semaphore(settings.smtp_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    def build(self, out: Outbound) -> Email:
        """The email for ``out`` as it goes on the wire: the message, then the same in the other language.

        Made with the ``compat32`` policy, which copies headers as given where the default policy parses each
        one (0.14 against 0.78 ms of CPU a message here, and a worker sends every case's mail): the subject
        and a Thai sender name RFC 2047-encoded, the body UTF-8 in base64. A recipient address that is not
        ASCII (SMTPUTF8) goes the default policy's way."""
        body = out.message.text
        if out.alternative is not None:
            body = f"{body}\n\n----\n{out.alternative.subject}\n{out.alternative.text}"
        headers = {
            "From": self._from_header,
            "To": out.address,
            "Date": formatdate(usegmt=True),
            "Message-ID": make_msgid(idstring=f"rongtuk-notification-{out.notification_id}", domain="rongtuk"),
            "X-Rongtuk-Notification": str(out.notification_id),
        }
        if not out.address.isascii():
            full = EmailMessage()
            for name, value in headers.items():
                full[name] = value
            full["Subject"] = out.message.subject
            full.set_content(body)
            return Email(self._sender, out.address, full.as_bytes(policy=SMTPUTF8), smtputf8=True)
        msg = MIMEText(body, "plain", "utf-8")
        for name, value in headers.items():
            msg[name] = value
        msg["Subject"] = Header(out.message.subject, "utf-8")  # type: ignore[assignment]  # compat32 takes a Header
        return Email(self._sender, out.address, msg.as_bytes(policy=_WIRE))

    async def send(self, out: Outbound) -> Receipt:
        try:
            await self._send(self.build(out))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            code = codes[0] if codes else 550
            raise (TransientError if 400 <= code < 500 else PermanentError)(
                "SMTPRecipientsRefused", status_code=code
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise (TransientError if 400 <= exc.code < 500 else PermanentError)(
                type(exc).__name__, status_code=exc.code
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise TransientError(type(exc).__name__) from None
        return Receipt(250)

    async def _send(self, message: Email) -> None:
        """Send on a kept connection if there is one, else on a new one; it is kept again only after a
        message went through on it (after a refusal or an error it is closed)."""
        async with self._slots:
            client, kept = await self._connection()
            try:
                try:
                    await message.send(client)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    if not kept:
                        raise
                    # The server closed the kept connection while it was idle (servers do after a minute or
                    # so): once more on a new one, as the dispatcher would retry it anyway.
                    _close(client)
                    client = await self._connect()
                    await message.send(client)
            except BaseException:
                _close(client)
                raise
            self._idle.append((client, time.monotonic()))

    async def _connection(self) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while self._idle:
            client, since = self._idle.pop()
            if client.is_connected and now - since < SMTP_IDLE_SECONDS:
                return client, True
            _close(client)
        return await self._connect(), False

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._user,
            password=self._password,
            start_tls=self._starttls,
            timeout=self._timeout,
            local_hostname=await self._ehlo_name(),
        )
        await client.connect()
        return client

    async def _ehlo_name(self) -> str:
        """The name this host gives in EHLO: ``smtp_helo_name``, else its fully qualified name, looked up once
        (aiosmtplib would look it up for every connection, and a host whose name no DNS server answers for
        would wait on each). If the lookup takes too long, the bare host name."""
        if self._helo_name is not None:
            return self._helo_name
        async with self._helo_lookup:  # connections opened at once wait for the one lookup
            if self._helo_name is None:
                try:
                    async with asyncio.timeout(SMTP_HELO_LOOKUP_SECONDS):
                        self._helo_name = await asyncio.to_thread(_fully_qualified_name)
                except TimeoutError:
                    self._helo_name = socket.gethostname()
                    log.warning("smtp_helo_name_lookup_slow", fallback=self._helo_name)
            return self._helo_name

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                async with asyncio.timeout(1):
                    await client.quit()
            except Exception:
                _close(client)


def _fully_qualified_name() -> str:
    return socket.getfqdn()


def _close(client: aiosmtplib.SMTP) -> None:
    """Drop a connection without a word to the server (QUIT would wait for its answer)."""
    if client.is_connected:
        client.close()


@dataclass
class Gateways:
    """The gateway for each channel; channels with none configured get the logging default."""

    sms: Gateway
    line: Gateway
    email: Gateway
    inbox: Gateway = field(default_factory=InboxGateway)

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateways:
        """Real gateways for what is configured, the logging default for the rest."""
        timeout = settings.gateway_timeout_seconds
        return cls(
            sms=SmsGateway(settings.sms_gateway_url, settings.sms_gateway_token, timeout=timeout)
            if settings.sms_gateway_url
            else LogGateway("sms"),
            line=LineGateway(settings.line_channel_access_token, api_base=settings.line_api_base, timeout=timeout)
            if settings.line_channel_access_token
            else LogGateway("line"),
            email=EmailGateway(settings) if settings.smtp_host else LogGateway("email"),
        )

    def for_channel(self, channel: str) -> Gateway:
        """The gateway of a complainant's channel (``web`` is the inbox)."""
        return {"sms": self.sms, "line": self.line, "email": self.email}.get(channel, self.inbox)

    @property
    def email_configured(self) -> bool:
        return not isinstance(self.email, LogGateway)

    async def aclose(self) -> None:
        await asyncio.gather(self.sms.aclose(), self.line.aclose(), self.email.aclose())

"""Signing in: passwords, access and refresh tokens, logout, disabled accounts, OpenID Connect with a real JWKS.

The app here needs no Temporal: sign-in touches only the database (and, for OIDC, an HTTP server on 127.0.0.1).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from api.accounts import add_account, set_account_active
from api.auth import AUDIENCE, ISSUER, OidcVerifier, StaffRole
from config.settings import DEV_JWT_SECRET, Settings
from store.db import Database
from tests.api.conftest import app_client

PASSWORD = "correct horse battery"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c


async def new_user(db: Database, role: StaffRole = StaffRole.OFFICER, agency: str | None = None) -> str:
    name = f"u-{uuid.uuid4().hex[:10]}"
    await add_account(db, username=name, role=role, password=PASSWORD, agency=agency)
    return name


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"username": username, "password": password})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_me_refresh_logout(client: httpx.AsyncClient, db: Database) -> None:
    name = await new_user(db, StaffRole.AGENCY, "BMA")
    response = await login(client, name)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    assert response.headers["cache-control"] == "no-store"
    me = await client.get("/api/v1/auth/me", headers=auth(tokens["access_token"]))
    assert me.json() == {"username": name, "role": "agency", "agency": "BMA", "unit": None}

    renewed = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200
    new = renewed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    # Rotation: the old refresh token is spent; presenting it again (a copy?) ends every session of the user.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "invalid_token"
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})).status_code == 401

    again = (await login(client, name)).json()
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": again["refresh_token"]})).status_code == 204
    refused = await client.post("/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert refused.status_code == 401


async def test_wrong_password_unknown_user_and_disabled_account_look_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    name = await new_user(db)
    tokens = (await login(client, name)).json()
    answers = [
        await login(client, name, "wrong password"),
        await login(client, "nobody-here"),
    ]
    await set_account_active(db, username=name, active=False)
    answers.append(await login(client, name))
    for answer in answers:
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_credentials"
        assert name not in answer.text and "wrong password" not in answer.text
    # Disabling revoked the refresh token too.
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401


async def test_passwords_are_checked_off_the_event_loop(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 takes a tenth of a second of CPU by design: on the event loop, every sign-in (right or wrong, or
    for a name nobody has) held up every other request of the process for that long."""
    from api import auth as auth_module

    loop_thread = threading.get_ident()
    checked_in: list[int] = []
    real = auth_module.verify_password

    def watched(password_hash: str, password: str) -> bool:
        checked_in.append(threading.get_ident())
        return real(password_hash, password)

    monkeypatch.setattr(auth_module, "verify_password", watched)
    name = await new_user(db)
    assert (await login(client, name)).status_code == 200
    assert (await login(client, name, "wrong password")).status_code == 401
    assert (await login(client, "nobody-here")).status_code == 401
    assert len(checked_in) == 3 and loop_thread not in checked_in


def _token(claims: dict[str, Any], key: Any = DEV_JWT_SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


async def test_expired_forged_and_malformed_tokens_are_refused(client: httpx.AsyncClient) -> None:
    now = int(datetime.now(UTC).timestamp())
    good = {"iss": ISSUER, "aud": AUDIENCE, "sub": "sup-x", "role": "supervisor", "typ": "access", "iat": now}
    assert (await client.get("/api/v1/auth/me", headers=auth(_token({**good, "exp": now + 60})))).status_code == 200
    refused = [
        _token({**good, "exp": now - 1}),  # expired
        _token({**good, "exp": now + 60}, key="another-secret-of-at-least-32-bytes!!"),  # forged
        _token({**good, "exp": now + 60, "aud": "someone-else"}),
        _token({**good, "exp": now + 60, "iss": "elsewhere"}),
        _token({**good, "exp": now + 60, "role": "king"}),
        _token({**good, "exp": now + 60, "role": "agency"}),  # agency staff without an agency
        _token({**good, "exp": now + 60, "typ": "refresh"}),
        _token({**good}),  # never expires: refused
        jwt.encode({**good, "exp": now + 60}, None, algorithm="none"),  # unsigned
        "not-a-token",
    ]
    for token in refused:
        response = await client.get("/api/v1/auth/me", headers=auth(token))
        assert response.status_code == 401, token
        assert response.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": "Basic eDp5"})).status_code == 401
    assert (await client.get("/api/v1/auth/me")).status_code == 401


# --- OpenID Connect against a JWKS served on 127.0.0.1 ------------------------------------------------------


class Jwks:
    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0


@pytest.fixture
def jwks() -> Iterator[tuple[Jwks, str]]:
    state = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def _rsa_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    return private, {**public, "kid": kid, "use": "sig", "alg": "RS256"}


async def test_openid_connect_tokens_with_role_and_agency_claims(
    settings: Settings, jwks: tuple[Jwks, str], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, url = jwks
    private, public = _rsa_key("k1")
    state.keys = [public]
    oidc = settings.model_copy(
        update={
            "oidc_issuer": "https://idp.example.go.th/realms/rongtuk",
            "oidc_audience": "rongtuk",
            "oidc_jwks_url": url,
            "oidc_role_claim": "realm_access.roles",
            "oidc_agency_claim": "agency",
        }
    )
    now = datetime.now(UTC)
    claims = {
        "iss": "https://idp.example.go.th/realms/rongtuk",
        "aud": "rongtuk",
        "sub": "5b0c-uuid",
        "preferred_username": "somsri.k",
        "realm_access": {"roles": ["offline_access", "agency_head"]},
        "agency": "DOPA",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }

    def signed(c: dict[str, Any], key: Any = private, kid: str = "k1") -> dict[str, str]:
        return auth(_token(c, key, "RS256", kid=kid))

    async with app_client(oidc) as client:
        me = await client.get("/api/v1/auth/me", headers=signed(claims))
        assert me.status_code == 200, me.text
        assert me.json() == {"username": "somsri.k", "role": "agency_head", "agency": "DOPA", "unit": None}
        for _ in range(3):
            assert (await client.get("/api/v1/auth/me", headers=signed(claims))).status_code == 200
        assert state.fetches == 1, "the key set is cached"

        stranger, _ = _rsa_key("k1")
        assert (await client.get("/api/v1/auth/me", headers=signed(claims, stranger))).status_code == 401
        expired = {**claims, "exp": now - timedelta(minutes=1)}
        assert (await client.get("/api/v1/auth/me", headers=signed(expired))).status_code == 401
        other_audience = {**claims, "aud": "another-app"}
        assert (await client.get("/api/v1/auth/me", headers=signed(other_audience))).status_code == 401
        no_role = {**claims, "realm_access": {"roles": ["offline_access"]}}
        assert (await client.get("/api/v1/auth/me", headers=signed(no_role))).status_code == 403

        # Key rotation: a token with a new key id makes the API fetch the set again (at most every 30 s; the
        # pause is shortened here).
        rotated, rotated_public = _rsa_key("k2")
        state.keys = [public, rotated_public]
        assert (await client.get("/api/v1/auth/me", headers=signed(claims, rotated, "k2"))).status_code == 401
        monkeypatch.setattr(OidcVerifier, "_REFETCH_AFTER_SECONDS", 0.0)
        assert (await client.get("/api/v1/auth/me", headers=signed(claims, rotated, "k2"))).status_code == 200
        assert state.fetches == 2
        # The API's own tokens still work beside the provider's.
        name = await new_user(db, StaffRole.AUDITOR)
        own = (await login(client, name)).json()["access_token"]
        assert (await client.get("/api/v1/auth/me", headers=auth(own))).json()["role"] == "auditor"


async def test_jwks_unreachable_refuses_provider_tokens_without_hanging(settings: Settings) -> None:
    from cli.devserver import free_port

    oidc = settings.model_copy(
        update={
            "oidc_issuer": "https://idp.example.go.th",
            "oidc_jwks_url": f"http://127.0.0.1:{free_port()}/jwks.json",
            "oidc_jwks_timeout_seconds": 1.0,
        }
    )
    private, _ = _rsa_key("k1")
    now = datetime.now(UTC)
    token = _token(
        {"iss": "https://idp.example.go.th", "sub": "x", "exp": now + timedelta(minutes=5)}, private, "RS256", kid="k1"
    )
    async with app_client(oidc) as client:
        assert (await client.get("/api/v1/auth/me", headers=auth(token))).status_code == 401

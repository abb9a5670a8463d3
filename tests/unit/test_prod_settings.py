"""Production mode refuses weak secrets, and never prints them while doing so."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from config.settings import DEV_JWT_SECRET, DEV_PAYLOAD_KEY, Access, Settings

STRONG_KEY = base64.b64encode(os.urandom(32)).decode()
STRONG_SECRET = os.urandom(32).hex()


def prod(**overrides: object) -> Settings:
    values: dict[str, object] = {"env": "prod", "payload_key": STRONG_KEY, "jwt_secret": STRONG_SECRET}
    return Settings(**(values | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("payload_key", DEV_PAYLOAD_KEY, "RONGTUK_PAYLOAD_KEY"),
        ("payload_key", base64.b64encode(bytes(32)).decode(), "RONGTUK_PAYLOAD_KEY"),  # all zero
        ("payload_key", base64.b64encode(os.urandom(16)).decode(), "RONGTUK_PAYLOAD_KEY"),  # 128 bits
        ("payload_key", "not base64 at all!", "RONGTUK_PAYLOAD_KEY"),
        ("jwt_secret", DEV_JWT_SECRET, "RONGTUK_JWT_SECRET"),
        ("jwt_secret", "hunter2-but-secret", "RONGTUK_JWT_SECRET"),  # short
        ("jwt_secret", "0" * 64, "RONGTUK_JWT_SECRET"),  # long but one character
    ],
)
def test_prod_refuses_weak_secrets_without_printing_them(field: str, value: str, named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        prod(**{field: value})
    text = str(refused.value)
    assert named in text
    assert value not in text and STRONG_KEY not in text and STRONG_SECRET not in text


def test_prod_defaults_are_the_hardened_ones() -> None:
    settings = prod()
    assert settings.docs_access is Access.STAFF and settings.metrics_access is Access.STAFF
    assert settings.cookie_secure is True and settings.log_format == "json"
    assert prod(docs_access="off").docs_access is Access.OFF


def test_dev_keeps_its_conveniences() -> None:
    settings = Settings(env="dev")
    assert settings.docs_access is Access.PUBLIC and settings.cookie_secure is False
    assert settings.jwt_secret == DEV_JWT_SECRET

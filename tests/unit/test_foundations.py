"""Settings, tracking codes, the payload codec and log redaction: small pieces with sharp edges."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime

import pytest
import structlog
from temporalio.api.common.v1 import Payload

from api.ids import ALPHABET, new_case_id, new_tracking_code, normalise_tracking_code
from config.logging import configure_logging
from config.settings import DEV_PAYLOAD_KEY, Settings
from config.temporal import EncryptionCodec


def test_prod_refuses_the_dev_payload_key() -> None:
    with pytest.raises(ValueError, match="PAYLOAD_KEY"):
        Settings(env="prod")
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(env="prod", payload_key=key, jwt_secret=os.urandom(32).hex())
    assert settings.log_format == "json"


def test_database_defaults_to_a_sqlite_file_in_the_data_dir() -> None:
    settings = Settings(data_dir="somewhere")
    assert settings.database_url == "sqlite+aiosqlite:///somewhere/rongtuk.db"
    assert settings.is_sqlite
    assert Settings(database_url="postgresql+asyncpg://db/x").database_url == "postgresql+asyncpg://db/x"


def test_extra_holidays_come_from_json_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RONGTUK_EXTRA_HOLIDAYS", '{"2026-12-07": "Cabinet bridge day"}')
    assert str(next(iter(Settings().extra_holidays))) == "2026-12-07"


def test_tracking_codes_are_readable_and_forgiving() -> None:
    codes = {new_tracking_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:50]:
        assert len(code) == 11 and code[5] == "-"
        assert all(ch in ALPHABET for ch in code.replace("-", ""))
        assert normalise_tracking_code(code.lower().replace("-", " ")) == code
    assert normalise_tracking_code("oooo1-iiiil") == "00001-11111"
    assert normalise_tracking_code("ABCDE-FGHJ") is None
    assert normalise_tracking_code("ABCDE-FGHJU") is None


def test_case_ids_carry_the_bangkok_date() -> None:
    # 20:00 UTC on 31 Dec is already 1 Jan in Bangkok.
    assert new_case_id(datetime(2026, 12, 31, 20, 0, tzinfo=UTC)).startswith("RT-20270101-")


async def test_codec_encrypts_and_round_trips() -> None:
    codec = EncryptionCodec(DEV_PAYLOAD_KEY)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"name": "สมชาย"}).encode())
    (encoded,) = await codec.encode([plain])
    # The JSON payload holds the name escaped (\u0e2a...): neither it nor the payload as a whole shows through.
    assert b"\\u0e2a" in plain.data and plain.data not in encoded.data and b"\\u0e2a" not in encoded.data
    assert encoded.metadata["encoding"] == b"binary/encrypted"
    (decoded,) = await codec.decode([encoded])
    assert decoded == plain
    other = EncryptionCodec(base64.b64encode(b"x" * 32).decode())
    with pytest.raises(Exception):  # noqa: B017 - any failure to decrypt is right; what matters is no plaintext
        await other.decode([encoded])


def test_personal_keys_are_redacted_from_logs(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(fmt="json", level="INFO")
    structlog.get_logger("t").info("filed", case_id="RT-1", phone="+66812345678", name="สมชาย")
    out = capsys.readouterr().err
    assert "RT-1" in out and "+66812345678" not in out
    assert "สมชาย" not in out and json.dumps("สมชาย")[1:-1] not in out  # as is, and as JSON escapes it


async def test_codec_compresses_large_payloads_before_encrypting_and_reads_both_kinds() -> None:
    codec = EncryptionCodec(DEV_PAYLOAD_KEY)
    plain_codec = EncryptionCodec(DEV_PAYLOAD_KEY, compress=False)
    text = {"description": "ถนนหน้าบ้านเป็นหลุมเป็นบ่อ น้ำท่วมขังทุกครั้งที่ฝนตก " * 20}
    large = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text, ensure_ascii=False).encode())
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'{"seq":1}')
    packed, tiny = await codec.encode([large, small])
    (unpacked,) = await plain_codec.encode([large])
    assert packed.metadata["compression"] == b"zlib" and "compression" not in unpacked.metadata
    assert len(packed.data) < len(unpacked.data) / 2
    assert "compression" not in tiny.metadata, "a payload this small is not worth compressing"
    # Either codec reads either kind: compression can be switched on or off without rewriting a history.
    for reader in (codec, plain_codec):
        assert await reader.decode([packed, unpacked, tiny]) == [large, large, small]


@pytest.mark.parametrize("tamper", ["flag removed", "flag added", "unknown method"])
async def test_codec_refuses_a_payload_whose_compression_flag_was_changed(tamper: str) -> None:
    codec = EncryptionCodec(DEV_PAYLOAD_KEY)
    large = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps({"text": "ร้องทุกข์ " * 100}).encode())
    (payload,) = await codec.encode([large])
    if tamper == "flag removed":
        del payload.metadata["compression"]
    elif tamper == "flag added":
        (payload,) = await EncryptionCodec(DEV_PAYLOAD_KEY, compress=False).encode([large])
        payload.metadata["compression"] = b"zlib"
    else:
        payload.metadata["compression"] = b"brotli"
    with pytest.raises(Exception):  # noqa: B017 - it must not decode to anything
        await codec.decode([payload])


class _FlakyCursor:
    """A cursor whose first ``locked`` statements are refused as SQLite refuses them under contention."""

    def __init__(self, locked: int, error: str = "database is locked") -> None:
        self.locked, self.error, self.ran, self.closed = locked, error, [], False

    def execute(self, sql: str) -> None:
        if self.locked:
            self.locked -= 1
            raise RuntimeError(self.error)
        self.ran.append(sql)

    def close(self) -> None:
        self.closed = True


def test_a_new_sqlite_connection_waits_out_a_locked_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from store import db

    monkeypatch.setattr(db.time, "sleep", lambda _: None)
    cursor = _FlakyCursor(locked=3)
    db._sqlite_pragmas(type("Conn", (), {"cursor": lambda self: cursor})(), None)
    assert cursor.ran == list(db._PRAGMAS) and cursor.closed, "every pragma, in order, once the lock is gone"

    other = _FlakyCursor(locked=1, error="disk I/O error")
    with pytest.raises(RuntimeError, match="disk I/O error"):  # anything else is not waited for
        db._sqlite_pragmas(type("Conn", (), {"cursor": lambda self: other})(), None)
    assert other.ran == [] and other.closed

    stuck = _FlakyCursor(locked=10_000)
    with pytest.raises(RuntimeError, match="database is locked"):  # nor for ever
        db._sqlite_pragmas(type("Conn", (), {"cursor": lambda self: stuck})(), None)
    assert stuck.locked == 10_000 - db._PRAGMA_TRIES

"""Files judged by their bytes: types, limits, GPS read and stripped; the disk store for real."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from api.errors import AppError
from attachments.files import prepare
from attachments.storage import DiskStorage, StorageError, content_key
from tests.attachments.images import LATITUDE, LONGITUDE, PDF, SCRIPT, gps_in, photo
from tests.attachments.storage_checks import assert_deletes_and_says_so

LIMIT = 1024 * 1024


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")])
def test_photos_are_known_by_their_bytes_and_served_without_metadata(fmt: str, mime: str) -> None:
    data = photo(fmt)
    assert gps_in(data)  # the test file does carry a position
    f = prepare("photo.bin", data, max_bytes=LIMIT)
    assert f.content_type == mime and f.public_type == mime
    assert gps_in(f.public_data) == {}
    with Image.open(io.BytesIO(f.public_data)) as served:
        assert dict(served.getexif()) == {}
        assert served.size == (64, 48)


def test_gps_is_read_from_the_original() -> None:
    f = prepare("x.jpg", photo(), max_bytes=LIMIT)
    assert f.latitude == pytest.approx(LATITUDE, abs=1e-4)
    assert f.longitude == pytest.approx(LONGITUDE, abs=1e-4)
    assert prepare("y.jpg", photo(gps=False), max_bytes=LIMIT).latitude is None


def test_heic_becomes_a_jpeg_copy() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (0, 90, 200)).save(buffer, "HEIF")
    f = prepare("IMG_0001.HEIC", buffer.getvalue(), max_bytes=LIMIT)
    assert f.content_type == "image/heic" and f.public_type == "image/jpeg"


def test_a_png_named_pdf_is_a_png_and_a_pdf_is_served_as_it_is() -> None:
    assert prepare("scan.pdf", photo("PNG"), max_bytes=LIMIT).content_type == "image/png"
    f = prepare("letter.pdf", PDF, max_bytes=LIMIT)
    assert f.content_type == "application/pdf" and f.public_data == PDF


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("photo.jpg", SCRIPT, 415, "attachment_type_not_allowed"),
        ("page.html", b"<html><script>alert(1)</script></html>", 415, "attachment_type_not_allowed"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 422, "attachment_unreadable"),
        ("empty.jpg", b"", 422, "attachment_unreadable"),
        ("big.jpg", b"\xff\xd8\xff" + b"\x00" * LIMIT, 413, "attachment_too_large"),
    ],
)
def test_bad_files_are_refused_in_both_languages(name: str, data: bytes, status: int, code: str) -> None:
    with pytest.raises(AppError) as refused:
        prepare(name, data, max_bytes=LIMIT)
    assert refused.value.status == status and refused.value.code == code
    assert refused.value.message and refused.value.message_th


async def test_disk_storage_round_trip_and_no_escape(tmp_path: Path) -> None:
    store = DiskStorage(tmp_path / "att")
    key = content_key("original", "ab" * 32)
    await store.put(key, b"bytes", "image/jpeg")
    await store.put(key, b"bytes", "image/jpeg")  # content-addressed: a second write changes nothing
    assert await store.get(key) == b"bytes"
    assert (tmp_path / "att" / "original" / "ab" / "ab").is_dir()
    with pytest.raises(StorageError):
        await store.get("../../etc/passwd")
    with pytest.raises(StorageError):
        await store.get(content_key("original", "cd" * 32))
    await assert_deletes_and_says_so(store, key)
    with pytest.raises(StorageError):
        await store.delete("../../etc/passwd")

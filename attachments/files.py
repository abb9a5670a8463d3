"""What an uploaded file is, judged from its bytes: type, size, a photo's GPS, and a copy without metadata.

The type comes from the file's magic numbers (``filetype``) and, for images, from Pillow actually decoding
it; the name and the declared content type are never trusted. The copy others see is re-encoded from the
pixels (EXIF, GPS, XMP and text chunks do not survive); HEIC photos become JPEG, which every browser shows.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import filetype
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from api.errors import AppError

try:  # HEIC/HEIF photos from phones; the shipped wheel carries libheif
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIC = True
except ImportError:  # pragma: no cover - pillow-heif is a dependency; this keeps the rest working without it
    HEIC = False

IMAGE_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"} | (
    {"image/heic": "HEIF", "image/heif": "HEIF"} if HEIC else {}
)
PDF = "application/pdf"
ALLOWED_TYPES = frozenset(IMAGE_TYPES) | {PDF}
# Decoding a 30000 x 30000 "photo" would take gigabytes: refuse it instead (Pillow raises past this).
MAX_PIXELS = 60_000_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")


@dataclass(frozen=True)
class Prepared:
    """An accepted file: its bytes, the stripped copy others are served, and what was read from it."""

    name: str
    sha256: str
    content_type: str
    data: bytes
    public_data: bytes
    public_type: str
    latitude: float | None = None
    longitude: float | None = None

    @property
    def size(self) -> int:
        return len(self.data)


def too_large(limit: int) -> AppError:
    mib = limit / (1024 * 1024)
    return AppError(
        status=413,
        code="attachment_too_large",
        message=f"A file may be at most {mib:.1f} MiB; make the photo smaller or send fewer pages.",
        message_th=f"ไฟล์แต่ละไฟล์ต้องมีขนาดไม่เกิน {mib:.1f} MiB โปรดลดขนาดรูปหรือแบ่งส่งเอกสาร",
    )


def unsupported(name: str) -> AppError:
    return AppError(
        status=415,
        code="attachment_type_not_allowed",
        message="Only photos (JPEG, PNG, WebP, HEIC) and PDF documents can be attached; "
        f"the content of '{name}' is none of these.",
        message_th=f"แนบได้เฉพาะรูปภาพ (JPEG, PNG, WebP, HEIC) และเอกสาร PDF เท่านั้น เนื้อหาของไฟล์ '{name}' ไม่ใช่ประเภทดังกล่าว",
    )


def unreadable(name: str) -> AppError:
    return AppError(
        status=422,
        code="attachment_unreadable",
        message=f"The file '{name}' is damaged or cannot be read as the kind of file it claims to be.",
        message_th=f"ไฟล์ '{name}' เสียหายหรืออ่านไม่ได้",
    )


def clean_name(name: str | None) -> str:
    """A file name fit to show: no path, no control characters, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return _CONTROL.sub("", base).strip()[:255] or "file"


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (Fraction(float(x)).limit_denominator(10**6) for x in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    result = float(d + m / 60 + s / 3600)
    return -result if str(ref).upper() in {"S", "W"} else result


def gps_of(image: Image.Image) -> tuple[float, float] | None:
    """The photo's EXIF GPS position (decimal degrees), if it has a usable one."""
    try:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # a broken EXIF block is no reason to refuse the photo
        return None
    if not gps or 2 not in gps or 4 not in gps:
        return None
    lat = _degrees(gps[2], gps.get(1, "N"))
    lon = _degrees(gps[4], gps.get(3, "E"))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def _stripped(image: Image.Image, content_type: str) -> tuple[bytes, str]:
    """The pixels only, upright, in the same format (HEIC: JPEG); no EXIF, XMP or text chunks."""
    upright = ImageOps.exif_transpose(image)
    out_format = IMAGE_TYPES[content_type]
    if out_format == "HEIF":
        out_format, content_type = "JPEG", "image/jpeg"
    if out_format == "JPEG" and upright.mode not in {"RGB", "L"}:
        upright = upright.convert("RGB")
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 90} if out_format in {"JPEG", "WEBP"} else {}
    clean.save(buffer, format=out_format, **options)
    return buffer.getvalue(), content_type


def prepare(name: str | None, data: bytes, *, max_bytes: int) -> Prepared:
    """Check one file and make its served copy; raises AppError 413, 415 or 422 (bilingual)."""
    shown = clean_name(name)
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if not data:
        raise unreadable(shown)
    kind = filetype.guess(data)
    content_type = kind.mime if kind is not None else None
    if content_type not in ALLOWED_TYPES:
        raise unsupported(shown)
    sha = hashlib.sha256(data).hexdigest()
    if content_type == PDF:
        # Served as it is: a PDF's pages are the point; its metadata is the scanner's, not a position.
        return Prepared(shown, sha, PDF, data, data, PDF)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_PIXELS:
                    raise unreadable(shown)
                image.load()
                position = gps_of(image)
                public_data, public_type = _stripped(image, content_type)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        raise unreadable(shown) from None
    lat, lon = position if position else (None, None)
    return Prepared(shown, sha, content_type, data, public_data, public_type, lat, lon)

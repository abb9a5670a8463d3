"""The one shape every report has: named columns and rows, already labelled in the reader's language.

Pages draw it, charts plot it, exports write it: so every figure on a page can be exported exactly as shown.
Key columns (period and dimension codes) travel with the labels, so a CSV can be joined back to other data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Col", "Table"]


@dataclass(frozen=True)
class Col:
    """A column: its key, its heading in both languages, and whether it is a number or shown on pages."""

    key: str
    name_en: str
    name_th: str
    numeric: bool = True
    shown: bool = True  # code columns are exported but not drawn

    def name(self, lang: str) -> str:
        return self.name_th if lang == "th" else self.name_en


@dataclass
class Table:
    """A report table; ``rows`` are tuples in ``columns`` order."""

    code: str
    title: str
    columns: tuple[Col, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str | None = None

    def index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def column(self, key: str) -> list[Any]:
        i = self.index(key)
        return [row[i] for row in self.rows]

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts by column key (the JSON API's shape)."""
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.rows]

    def headers(self, lang: str) -> list[str]:
        return [c.name(lang) for c in self.columns]

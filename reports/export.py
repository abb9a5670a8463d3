"""CSV and Excel output of report tables and of the case list, written as rows arrive.

CSV is UTF-8 with a byte-order mark, so Excel opens Thai text correctly by double-click. Workbooks are
written by xlsxwriter in constant-memory mode (one row in memory at a time) to a temporary file, then sent;
a sheet holds at most 1,048,575 rows, so longer exports continue on further sheets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter

from reports.table import Col, Table
from sla.calendar import BANGKOK

__all__ = ["BOM", "SHEET_ROWS", "csv_lines", "csv_stream", "csv_text", "excel_value", "rows_of", "write_xlsx"]

BOM = "\ufeff"
SHEET_ROWS = 1_048_575  # Excel's limit less the header row


def excel_value(value: Any) -> Any:
    """A cell value both writers accept: datetimes in Bangkok time without zone, lists joined."""
    if isinstance(value, datetime):
        return value.astimezone(BANGKOK).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return value


def _csv_value(value: Any) -> Any:
    value = excel_value(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else value


class _Csv:
    """A CSV writer into a string buffer that hands back what it has written so far."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def row(self, values: Iterable[Any]) -> None:
        self._writer.writerow([_csv_value(v) for v in values])

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def csv_lines(columns: Iterable[Col], rows: Iterable[tuple[Any, ...]], lang: str) -> Iterator[str]:
    """The CSV text of a table, a chunk of rows at a time (header first, with the byte-order mark)."""
    out = _Csv()
    out.row(c.name(lang) for c in columns)
    yield BOM + out.take()
    for n, row in enumerate(rows, 1):
        out.row(row)
        if n % 500 == 0:
            yield out.take()
    if rest := out.take():
        yield rest


async def csv_stream(
    columns: Iterable[Col],
    rows: AsyncIterator[tuple[Any, ...]],
    lang: str,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[str]:
    """:func:`csv_lines` for rows that arrive from the database; ``progress`` hears the running count."""
    out = _Csv()
    out.row(c.name(lang) for c in columns)
    yield BOM + out.take()
    n = 0
    async for row in rows:
        out.row(row)
        n += 1
        if n % 1000 == 0:
            if progress is not None:
                progress(n)
            yield out.take()
    if progress is not None:
        progress(n)
    if rest := out.take():
        yield rest


def csv_text(table: Table, lang: str) -> str:
    """A whole table as CSV text (small tables)."""
    return "".join(csv_lines(table.columns, table.rows, lang))


async def write_xlsx(
    path: Path,
    *,
    sheets: list[tuple[str, tuple[Col, ...], AsyncIterator[tuple[Any, ...]]]],
    lang: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``sheets`` (title, columns, rows) to ``path``; returns the rows written. ``progress`` is told
    the running count every thousand rows."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True})
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    written = 0
    try:
        for title, columns, rows in sheets:
            part = 0
            sheet = None
            line = 0
            async for row in rows:
                if sheet is None or line > SHEET_ROWS:
                    part += 1
                    name = title[:28] if part == 1 else f"{title[:24]} ({part})"
                    sheet = book.add_worksheet(name)
                    sheet.write_row(0, 0, [c.name(lang) for c in columns], bold)
                    line = 1
                for col, value in enumerate(row):
                    value = excel_value(value)
                    if isinstance(value, datetime):
                        sheet.write_datetime(line, col, value, when)
                    elif value is None:
                        sheet.write_blank(line, col, None)
                    else:
                        sheet.write(line, col, value)
                line += 1
                written += 1
                if progress is not None and written % 1000 == 0:
                    progress(written)
            if sheet is None:  # an empty table still gets its sheet and header
                sheet = book.add_worksheet(title[:28])
                sheet.write_row(0, 0, [c.name(lang) for c in columns], bold)
    finally:
        book.close()
    if progress is not None:
        progress(written)
    return written


async def rows_of(table: Table) -> AsyncIterator[tuple[Any, ...]]:
    """A table's rows as the async iterator :func:`write_xlsx` takes."""
    for row in table.rows:
        yield row

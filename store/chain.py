"""The case event log's hash chain: each row's hash covers its content and its predecessor's hash.

The projection writes ``prev_hash`` and ``hash`` with every timeline row; ``rongtuk audit verify`` recomputes
them. Rows are rebuilt from Temporal histories with the same content, so a rebuilt chain equals the first one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The columns a row's hash covers, in this order; anything else (ids, the hashes) is bookkeeping.
CHAINED_FIELDS = (
    "case_id",
    "seq",
    "event",
    "from_state",
    "to_state",
    "actor_id",
    "actor_role",
    "actor_agency",
    "at",
    "public",
    "data",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        # The read model stores UTC; the workflow hands Bangkok time: both hash alike.
        return value.astimezone(UTC).isoformat()
    return value


def event_hash(prev_hash: str | None, row: Mapping[str, Any]) -> str:
    """SHA-256 over the predecessor's hash and the row's chained fields in canonical JSON."""
    body = {name: _canonical(row.get(name)) for name in CHAINED_FIELDS}
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash or GENESIS}\n{blob}".encode()).hexdigest()

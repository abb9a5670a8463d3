"""Likely duplicates among open or recent cases: the same complainant (citizen ID or phone), or the same place
and category with similar text. Text similarity is the cosine of hashed character n-grams of the normalised
Thai text (Thai digits, vowel order and spacing made uniform), so it needs no training and no word lists.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from screening.places import Place, place_of_names
from screening.text import normalise
from workflows.process import OPEN_STATES

if TYPE_CHECKING:
    from store.db import Database

log = structlog.get_logger(__name__)

_VECTORISER = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2**20, alternate_sign=False)
# Below this a shared place and category is coincidence; a shared complainant needs no similar text at all.
MIN_TEXT_SIMILARITY = 0.35
MIN_SCORE = 0.5

# Why a case is a likely duplicate (``Candidate.reasons``, as the API gives them; the text's similarity is given
# beside them), and their names for people (en, th).
SAME_CITIZEN_ID = "same complainant (citizen ID)"
SAME_PHONE = "same complainant (phone)"
SAME_PLACE = "same place"
SAME_CATEGORY = "same category"
REASON_LABELS: dict[str, tuple[str, str]] = {
    SAME_CITIZEN_ID: ("same complainant (citizen ID)", "ผู้ร้องคนเดียวกัน (เลขประจำตัวประชาชน)"),
    SAME_PHONE: ("same complainant (phone)", "ผู้ร้องคนเดียวกัน (หมายเลขโทรศัพท์)"),
    SAME_PLACE: ("same place", "สถานที่เดียวกัน"),
    SAME_CATEGORY: ("same category", "ประเภทเดียวกัน"),
}


@dataclass(frozen=True)
class IndexedCase:
    case_id: str
    category: str | None
    province_code: str | None
    district_code: str | None
    citizen_id: str | None
    phone: str | None


@dataclass(frozen=True)
class Candidate:
    case_id: str
    score: float
    similarity: float
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "score": round(self.score, 3),
            "text_similarity": round(self.similarity, 3),
            "reasons": list(self.reasons),
        }


def vectorise(texts: list[str]) -> sparse.csr_matrix:
    """Hashed, L2-normalised character n-grams of the normalised texts (dot product = cosine)."""
    return _VECTORISER.transform([normalise(t) for t in texts]).astype(np.float32).tocsr()


@dataclass(frozen=True)
class _Indexed:
    """What a search reads, replaced whole by ``add``: a search holds one and sees its rows, cases and
    complainants agree, whatever is added meanwhile in another thread."""

    # Column-major: a query touches only the columns of its own n-grams (0.7 ms instead of 70 ms at 40k).
    matrix: sparse.csc_matrix
    cases: tuple[IndexedCase, ...]
    by_id: dict[str, tuple[int, ...]]
    by_phone: dict[str, tuple[int, ...]]


def _with(rows: dict[str, tuple[int, ...]], additions: dict[str, list[int]]) -> dict[str, tuple[int, ...]]:
    if not additions:
        return rows
    merged = dict(rows)
    for key, more in additions.items():
        merged[key] = merged.get(key, ()) + tuple(more)
    return merged


class DuplicateIndex:
    """Cases to compare a new complaint with; build it once, query it per complaint."""

    def __init__(self, cases: list[IndexedCase], texts: list[str]) -> None:
        empty = sparse.csc_matrix((0, _VECTORISER.n_features), dtype=np.float32)
        self._indexed = _Indexed(empty, (), {}, {})
        self._ids: set[str] = set()
        self.add(cases, texts)

    @property
    def cases(self) -> tuple[IndexedCase, ...]:
        return self._indexed.cases

    def add(self, cases: list[IndexedCase], texts: list[str]) -> int:
        """Add the cases not indexed yet (only those are vectorised); how many were added. A search may run in
        another thread meanwhile (the API screens in its thread pool): it goes on with what it holds."""
        new = [(case, text) for case, text in zip(cases, texts, strict=True) if case.case_id not in self._ids]
        if not new:
            return 0
        old = self._indexed
        by_id: dict[str, list[int]] = {}
        by_phone: dict[str, list[int]] = {}
        for i, (case, _) in enumerate(new, len(old.cases)):
            if case.citizen_id:
                by_id.setdefault(case.citizen_id, []).append(i)
            if case.phone:
                by_phone.setdefault(case.phone, []).append(i)
        self._indexed = _Indexed(
            sparse.vstack([old.matrix, vectorise([text for _, text in new])]).tocsc(),
            old.cases + tuple(case for case, _ in new),
            _with(old.by_id, by_id),
            _with(old.by_phone, by_phone),
        )
        self._ids.update(case.case_id for case, _ in new)
        return len(new)

    def __len__(self) -> int:
        return len(self._indexed.cases)

    def search(
        self,
        text: str,
        *,
        category: str | None,
        place: Place | None,
        citizen_id: str | None = None,
        phone: str | None = None,
        exclude: str | None = None,
        limit: int = 5,
    ) -> list[Candidate]:
        """The likeliest duplicates of a complaint, best first, with why each is one."""
        indexed = self._indexed  # one view throughout, whatever ``add`` puts in place meanwhile
        if not indexed.cases:
            return []
        query = vectorise([text])
        similarity = np.asarray(indexed.matrix[:, query.indices] @ query.data).ravel()
        same_person: dict[int, str] = {}
        for i in indexed.by_id.get(citizen_id or "", ()):
            same_person[i] = SAME_CITIZEN_ID
        for i in indexed.by_phone.get(phone or "", ()):
            same_person.setdefault(i, SAME_PHONE)
        near = set(np.flatnonzero(similarity >= MIN_TEXT_SIMILARITY).tolist()) | set(same_person)
        found = []
        for i in near:
            case = indexed.cases[i]
            if case.case_id == exclude:
                continue
            sim = float(similarity[i])
            reasons = [same_person[i]] if i in same_person else []
            same_place = (
                place is not None
                and place.province_code == case.province_code
                and (place.district_code is None or case.district_code in (None, place.district_code))
            )
            if same_place:
                reasons.append(SAME_PLACE)
            if category is not None and category == case.category:
                reasons.append(SAME_CATEGORY)
            # A shared complainant is strong evidence; place and category only count with similar text.
            score = sim * (0.6 + 0.2 * same_place + 0.2 * (category == case.category))
            if i in same_person:
                score = max(score, 0.6 + 0.4 * sim)
            if score >= MIN_SCORE:
                reasons.append(f"text similarity {sim:.2f}")
                found.append(Candidate(case.case_id, score, sim, tuple(reasons)))
        return sorted(found, key=lambda c: -c.score)[:limit]


async def load_index(
    session: AsyncSession,
    *,
    now: datetime,
    window_days: int,
    into: DuplicateIndex | None = None,
    received_since: datetime | None = None,
    limit: int = 200_000,
) -> DuplicateIndex:
    """Open cases, and cases received within ``window_days``, from the read model; with ``into`` and
    ``received_since``, only the cases received since then are added to an existing index."""
    from store import models

    since = now - timedelta(days=window_days)
    wanted = or_(models.Case.status.in_([s.value for s in OPEN_STATES]), models.Case.received_at >= since)
    if received_since is not None:
        wanted = models.Case.received_at >= received_since
    rows = await session.execute(
        select(
            models.Case.case_id,
            models.Case.description,
            models.Case.subject,
            models.Case.category,
            models.Case.province,
            models.Case.district,
            models.Case.complainant_citizen_id,
            models.Case.complainant_phone,
        )
        .where(wanted)
        .order_by(models.Case.received_at.desc())
        .limit(limit)
    )
    cases, texts = [], []
    for case_id, description, subject, category, province, district, citizen_id, phone in rows:
        place = place_of_names(province, district or "") if province else None
        cases.append(
            IndexedCase(
                case_id,
                category,
                place.province_code if place else None,
                place.district_code if place else None,
                citizen_id,
                phone,
            )
        )
        texts.append(" ".join(t for t in (subject, description) if t))
    # Vectorising is CPU work (0.3 ms a case): in a thread, so that the event loop goes on serving requests.
    if into is None:
        return await asyncio.to_thread(DuplicateIndex, cases, texts)
    await asyncio.to_thread(into.add, cases, texts)
    return into


class IndexKeeper:
    """A process's duplicate index, kept fresh for the screenings it serves.

    The first screening builds it (screenings arriving meanwhile wait for that one build); every screening
    then adds the cases received since the last one (only those are vectorised); and every ``rebuild_after``
    it is built again in full, in the background, so that closed cases leave and categories set since are
    seen, while screenings go on with the index they have. One build or top-up at a time."""

    def __init__(
        self,
        db: Database,
        *,
        window_days: int,
        rebuild_after: timedelta = timedelta(minutes=30),
        overlap: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.window_days = window_days
        self.rebuild_after = rebuild_after
        self.overlap = overlap  # read-model rows can land a little after their received_at
        self.index: DuplicateIndex | None = None
        # When the index in use was built, and topped up last (meaningful once there is one).
        self.built_at = self.refreshed_at = datetime.min.replace(tzinfo=UTC)
        self.rebuilding: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def get(self, session: AsyncSession, *, now: datetime) -> DuplicateIndex:
        """The index, topped up to ``now``; starts a full rebuild in the background when it is due."""
        async with self._lock:
            if self.index is None:
                self.index = await load_index(session, now=now, window_days=self.window_days)
                self.built_at = self.refreshed_at = now
                return self.index
            await self._top_up(session, self.index, since=self.refreshed_at, now=now)
            self.refreshed_at = now
            if now - self.built_at >= self.rebuild_after and self.rebuilding is None:
                self.rebuilding = asyncio.create_task(self._rebuild(now), name="rongtuk-duplicate-index")
            return self.index

    async def close(self) -> None:
        """Stop a rebuild under way (the process is stopping)."""
        if self.rebuilding is not None:
            self.rebuilding.cancel()
            await asyncio.gather(self.rebuilding, return_exceptions=True)

    async def _top_up(self, session: AsyncSession, index: DuplicateIndex, *, since: datetime, now: datetime) -> None:
        await load_index(
            session, now=now, window_days=self.window_days, into=index, received_since=since - self.overlap
        )

    async def _rebuild(self, started: datetime) -> None:
        try:
            async with self.db.session() as session:
                fresh = await load_index(session, now=started, window_days=self.window_days)
            async with self._lock:  # what was received while it was built, then the new one takes over
                async with self.db.session() as session:
                    await self._top_up(session, fresh, since=started, now=self.refreshed_at)
                self.index, self.built_at = fresh, started
            log.info("duplicate_index_rebuilt", cases=len(fresh))
        except Exception as exc:  # the database away: the index in use stays, the next screening tries again
            log.warning("duplicate_index_rebuild_failed", error=type(exc).__name__)
        finally:
            self.rebuilding = None

"""Report test data written straight into the read model: many cases over eight quarters of 2023-2024
(B.E. 2566-2567), in several provinces and agencies, with every status, outcome, stage and rating.

Receipts fall at all hours, weekends and holidays included, so the s.193/3 counting rules are exercised.
Each call uses its own identifiers, so seeding twice into one database adds, never collides.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from config.reference import region_of
from reports.dimensions import lookup
from sla.calendar import WorkingCalendar
from store.models import AgencyTask, Case
from workflows.process import Outcome

# Province Thai name -> region, as the projection derives it from the province code (config/regions.yaml).
_REGIONS = {name: region_of(code) for name, code in lookup().province_code.items()}

FIRST_DAY = date(2023, 1, 1)
LAST_DAY = date(2024, 12, 31)
PROVINCES = {  # Thai name -> (latitude, longitude) inside it, the first ones busiest
    "กรุงเทพมหานคร": (13.75, 100.5),
    "เชียงใหม่": (18.79, 98.98),
    "ขอนแก่น": (16.43, 102.83),
    "ภูเก็ต": (7.95, 98.34),
    "ชลบุรี": (13.25, 101.2),
    "นครราชสีมา": (14.97, 102.1),
    "เชียงราย": (19.91, 99.83),
    "อุดรธานี": (17.41, 102.79),
    "อุบลราชธานี": (15.24, 104.85),
    "นครสวรรค์": (15.7, 100.12),
    "พิษณุโลก": (16.82, 100.26),
    "สงขลา": (7.0, 100.47),
    "สุราษฎร์ธานี": (9.0, 99.2),
    "กาญจนบุรี": (14.3, 99.2),
    "พระนครศรีอยุธยา": (14.35, 100.57),
    "ลำปาง": (18.29, 99.49),
    "สกลนคร": (17.16, 104.15),
    "บุรีรัมย์": (14.99, 103.1),
}
_WEIGHTS = [12, 6, 5, 3, 4, 5] + [1] * 12
AGENCIES = ("MIN-MOI", "MIN-MOT", "MIN-MOPH", "OCPB")
CATEGORIES = ("roads.pothole", "lighting.streetlight", "flood.flooding", "waste.cleanliness", None)
CHANNELS = ("web", "line", "hotline", "walk_in", "letter", "app")
CAUSES = ("Contractor did not finish the work", "No maintenance budget", "Staff did not follow up", "  ")


@dataclass(frozen=True)
class Seeded:
    """What the seed wrote: its case ids (for tests that need them) and the run's prefix."""

    prefix: str
    case_ids: list[str]


def _when(rng: random.Random) -> datetime:
    day = FIRST_DAY + timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days + 1))
    # Bangkok wall clock at any minute of the day; stored in UTC.
    local = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=rng.randrange(24 * 60))
    return local - timedelta(hours=7)


async def seed_cases(
    session: AsyncSession, *, count: int = 400, seed: int = 12, calendar: WorkingCalendar | None = None
) -> Seeded:
    """Write ``count`` cases with their agency tasks and commit."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    calendar = calendar or WorkingCalendar()
    prefix = uuid.uuid4().hex[:8]
    ids: list[str] = []
    tasks: list[AgencyTask] = []
    people = [f"9{prefix[:4].encode().hex()[:4]}{n:08d}" for n in range(count // 3)]
    for n in range(count):
        received = _when(rng)
        province = rng.choices([*PROVINCES, None], weights=[*_WEIGHTS, 3])[0]
        case_id = f"rpt-{prefix}-{n:05d}"
        status = rng.choice(
            [
                "screening",
                "assignment",
                "stage1",
                "responded",
                "closed",
                "closed",
                "closed",
                "stage2",
                "closed_stage2",
                "withdrawn",
                "awaiting_info",
                "referred",
            ]
        )
        stage1_closed = stage2_started = stage2_closed = closed = None
        stage: int | None = None
        outcome: str | None = None
        if status in {"stage1", "responded", "assignment"}:
            stage = 1
        if status in {"closed", "stage2", "closed_stage2", "referred"}:
            stage = 1
            stage1_closed = received + timedelta(hours=rng.randrange(2, 24 * 16))
            outcome = rng.choice([o.value for o in Outcome])
            closed = stage1_closed
        if status in {"stage2", "closed_stage2", "referred"}:
            stage = 2
            stage2_started = stage1_closed + timedelta(hours=rng.randrange(1, 24 * 20))  # type: ignore[operator]
            closed = None
        if status in {"closed_stage2", "referred"}:
            stage2_closed = stage2_started + timedelta(hours=rng.randrange(24, 24 * 40))  # type: ignore[operator]
            outcome = rng.choice([o.value for o in Outcome])
            closed = stage2_closed
        if status == "withdrawn":
            closed = received + timedelta(days=rng.randrange(1, 10))
        rating = rng.choice([None, 1, 2, 3, 4, 5, 5, 4]) if stage1_closed else None
        # Open cases' deadlines lie around today, so some are overdue and some are not.
        due = now + timedelta(days=rng.randrange(-25, 40)) if closed is None and status != "withdrawn" else None
        latlon = PROVINCES.get(province) if province else None
        person = rng.choice(people) if rng.random() < 0.8 else None
        agencies = rng.sample(AGENCIES, rng.choice([0, 1, 1, 1, 2]))
        session.add(
            Case(
                case_id=case_id,
                tracking_code=f"R{prefix[:6]}{n:05d}".upper()[:16],
                workflow_id=f"complaint-{case_id}",
                status=status,
                channel=rng.choice(CHANNELS),
                description="report seed",
                category=rng.choice(CATEGORIES),
                complainant_citizen_id=person if person and rng.random() < 0.6 else None,
                complainant_phone=f"+66{person[-9:]}" if person else None,
                preferred_channels=["web"],
                confidential=rng.random() < 0.1,
                province=province,
                # The projection derives the region from the province (config/regions.yaml); so does the seed.
                region=_REGIONS.get(province) if province else None,
                latitude=latlon[0] + rng.uniform(-0.3, 0.3) if latlon else None,
                longitude=latlon[1] + rng.uniform(-0.3, 0.3) if latlon else None,
                agencies=agencies,
                outcome=outcome,
                received_at=received,
                updated_at=received,
                closed_at=closed,
                due_at=due,
                stage=stage,
                duplicate_of=ids[-1] if ids and rng.random() < 0.05 else None,
                root_cause=rng.choice(CAUSES) if outcome and rng.random() < 0.7 else None,
                stage1_closed_at=stage1_closed,
                stage2_started_at=stage2_started,
                stage2_closed_at=stage2_closed,
                rating=rating,
            )
        )
        tasks += [
            AgencyTask(case_id=case_id, agency=code, status="accepted", assigned_at=received) for code in agencies
        ]
        ids.append(case_id)
    await session.flush()
    session.add_all(tasks)
    await session.commit()
    return Seeded(prefix=prefix, case_ids=ids)

"""How the consoles word what the read model stores: deadlines, codes in a timeline entry, statuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from api.routes.pages import TEXTS, _count, _deadline, _state, field_label, said

BANGKOK = timezone(timedelta(hours=7))


@dataclass
class Named:
    name_th: str
    name_en: str


def test_a_working_day_deadline_is_the_day_it_ends() -> None:
    midnight = datetime(2026, 12, 12, 0, 0, tzinfo=BANGKOK)  # the end of Friday 11 December
    assert _deadline(midnight) == "ภายใน 11 ธ.ค. 2569"
    assert _deadline(midnight, "en") == "by end of 11 Dec 2026"
    assert _deadline(midnight.astimezone(UTC).isoformat()) == "ภายใน 11 ธ.ค. 2569", "ISO text in UTC too"


def test_any_other_moment_keeps_its_time_and_nothing_is_a_dash() -> None:
    assert _deadline(datetime(2026, 12, 11, 16, 30, tzinfo=BANGKOK)) == "11 ธ.ค. 2569 16:30"
    assert _deadline(datetime(2026, 12, 12, 0, 0, 1, tzinfo=BANGKOK)) == "12 ธ.ค. 2569 00:00"
    assert _deadline(None) == "-" and _deadline("") == "-"
    assert _deadline("not a date") == "not a date"


def test_a_timeline_entry_says_names_dates_and_flags_and_drops_the_heading() -> None:
    data = {
        "label": ["Complaint received", "ได้รับเรื่องร้องทุกข์"],
        "channel": "line",
        "agencies": ["DOPA", "NOPE"],
        "category": "roads.pothole",
        "outcome": "not_within_authority",
        "rule": "stage1_response",
        "due_at": "2026-12-11T17:00:00+00:00",
        "occurred_on": "2026-11-30",
        "out_of_time": True,
        "confidence": 0.856,
        "note": "urgent",
        "reason": "",
    }
    lines = said(
        data, "th", agencies={"DOPA": Named("กรมการปกครอง", "DOPA")}, categories={"roads.pothole": Named("หลุม", "Pit")}
    )
    assert lines == [
        ("ช่องทาง", "LINE"),
        ("หน่วยงาน", "กรมการปกครอง, NOPE"),
        ("ประเภท", "หลุม"),
        ("ผล", "ไม่อยู่ในอำนาจหน้าที่"),
        ("กำหนดเวลา", "ตอบผลขั้นที่ 1"),
        ("ครบกำหนด", "ภายใน 11 ธ.ค. 2569"),
        ("วันที่เกิดเหตุ", "30 พ.ย. 2569"),
        ("ยื่นเกินระยะเวลาที่รับเรื่อง", "ใช่"),
        ("ความมั่นใจ", "86%"),
        ("บันทึก", "urgent"),  # free text is never taken for a code
    ]
    assert said({"outcome": "resolved", "mystery": 3}, "en") == [("Outcome", "Resolved"), ("mystery", "3")]
    assert said(None) == []


def test_a_status_code_by_its_name() -> None:
    assert _state("stage1") == "หน่วยงานกำลังดำเนินการ" and _state("closed", "en") == "Closed"
    assert _state("no_such_state") == "no_such_state" and _state(None) == "-"


def test_a_phone_number_as_people_dial_it() -> None:
    from api.routes.pages import _phone

    assert _phone("+66812345678") == "081 234 5678" and _phone("+6621234567") == "02 123 4567"
    assert _phone("+447911123456") == "+44 7911 123456"
    assert _phone("not a number") == "not a number" and _phone(None) == "-"


def test_a_count_is_grouped_and_says_when_the_list_stopped_counting() -> None:
    assert _count(7) == "7" and _count(12_345) == "12,345"
    assert _count(10_000, False) == "10,000+", "the board counts to its cap, then says more"


def test_an_error_names_the_field_as_the_form_labels_it() -> None:
    th, en = TEXTS["th"], TEXTS["en"]
    assert field_label("complainant.phone", en) == "Phone" and field_label("complainant.phone", th) == "โทรศัพท์"
    assert field_label("location.province_code", en) == "Province"
    assert field_label("complainant.citizen_id", en) == en["citizen_id"] != "citizen_id"
    assert field_label("reason", th) == "เหตุผล", "an action's field, from the console's words"
    assert field_label("body.something_new", en) == "body.something_new", "unknown: the path, not nothing"


def test_a_timer_reads_as_the_deadline_the_workflow_meant() -> None:
    """The history keeps a timer's length, counted from the workflow's own clock, which is its task's start
    give or take some milliseconds: the moment it fires is read to the nearest second."""
    from api.history import _fires_at
    from api.routes.pages import _moment

    started = datetime(2026, 12, 3, 16, 0, 36, 773211, tzinfo=BANGKOK)
    midnight = datetime(2026, 12, 5, 0, 0, tzinfo=BANGKOK)
    early = midnight - started - timedelta(milliseconds=34)  # the workflow's now was 34 ms after the task's start
    assert _fires_at(started, early) == midnight and _deadline(_fires_at(started, early)) == "ภายใน 4 ธ.ค. 2569"
    assert _fires_at(started, midnight - started + timedelta(milliseconds=400)) == midnight
    assert _fires_at(started, timedelta(days=92)) == datetime(2027, 3, 5, 16, 0, 37, tzinfo=BANGKOK)
    assert _moment(started, seconds=True) == "3 ธ.ค. 2569 16:00:36" and _moment(started) == "3 ธ.ค. 2569 16:00"


def test_what_a_reclassification_and_a_review_record_reads_in_words() -> None:
    """A reclassification records what it changed as two small tables, and a review the agencies that
    investigate: the timeline showed "before: {'priority': 'normal', ...}" and "investigating: BMA"."""
    data = {
        "before": {"priority": "normal", "centre": "PSC-1111"},
        "after": {"priority": "urgent", "centre": "DAMRONG-50"},
        "investigating": ["DOPA"],
        "waited_working_days": 2,
    }
    centres = {"centre": [("PSC-1111", "ศูนย์บริการประชาชน", "PSC"), ("DAMRONG-50", "ศูนย์ดำรงธรรมเชียงใหม่", "DC")]}
    lines = said(data, "th", agencies={"DOPA": Named("กรมการปกครอง", "DOPA")}, codes=centres)
    assert lines == [
        ("เดิม", "ความเร่งด่วน: ปกติ, ศูนย์รับเรื่อง: ศูนย์บริการประชาชน"),
        ("เปลี่ยนเป็น", "ความเร่งด่วน: เร่งด่วน, ศูนย์รับเรื่อง: ศูนย์ดำรงธรรมเชียงใหม่"),
        ("หน่วยงานที่ตรวจสอบ", "กรมการปกครอง"),
        ("วันทำการที่รอคำตอบจากผู้ร้อง", "2"),
    ]
    assert said(data, "en", codes=centres)[0] == ("Was", "Priority: Normal, Receiving centre: PSC")


def test_every_field_the_process_records_has_words_in_both_languages() -> None:
    """Beside an action's own fields (the process table's, checked by the forms), the case rules and the
    workflow record fields of their own on a timeline entry: each must have a name to be shown by."""
    import re
    from pathlib import Path

    from api.ui_text import CONSOLE_TEXTS
    from workflows.process import TRANSITIONS

    source = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "workflows").glob("*.py"))
    recorded = set(re.findall(r'(?:payload|data)\["([a-z_]+)"\] =', source))
    recorded |= {f.name for t in TRANSITIONS for f in t.fields}
    assert {"investigating", "before", "after", "agency"} <= recorded, "the source is read as expected"
    for lang in ("th", "en"):
        missing = sorted(recorded - set(CONSOLE_TEXTS[lang]["fields"]))
        assert not missing, f"{lang}: no words for {missing}"


def test_a_place_reads_in_the_readers_language_from_geothais_names() -> None:
    from api.views import place_words

    assert place_words("กรุงเทพมหานคร", "เขตลาดพร้าว", "ลาดพร้าว") == "ลาดพร้าว, เขตลาดพร้าว, กรุงเทพมหานคร"
    assert place_words("กรุงเทพมหานคร", "เขตลาดพร้าว", "ลาดพร้าว", "en") == "Lat Phrao, Lat Phrao, Bangkok"
    # A district's name alone is not unique: it is looked up in its own province.
    assert place_words("นครราชสีมา", "เฉลิมพระเกียรติ", lang="en") == "Chaloem Phra Kiat, Nakhon Ratchasima"
    assert place_words("สระบุรี", "เฉลิมพระเกียรติ", lang="en") == "Chaloem Phra Kiat, Saraburi"
    # What geothai does not know stays as stored; nothing at all is a dash.
    assert place_words("BoardTest-1", lang="en") == "BoardTest-1"
    assert place_words("เชียงใหม่", "ไม่มีอำเภอนี้", lang="en") == "ไม่มีอำเภอนี้, Chiang Mai"
    assert place_words(None, lang="en") == "-" and place_words(None) == "-"


def test_pickers_list_provinces_in_the_order_a_reader_looks_them_up() -> None:
    from api.views import province_choices

    thai = [p.name_th for p in province_choices("th")]
    # Dictionary order: เชียงใหม่ is under ช, between ชุมพร and ตรัง, not after every consonant.
    assert thai.index("ชุมพร") < thai.index("เชียงใหม่") < thai.index("ตรัง"), thai
    english = [p.name_en for p in province_choices("en")]
    assert english == sorted(english, key=str.casefold) and len(english) == len(thai) == 77


def test_a_province_is_found_by_the_names_people_use() -> None:
    from api.schemas import find_province

    for name in ("กรุงเทพมหานคร", "Bangkok", "กทม", "bkk", "10", " จ.กรุงเทพมหานคร "):
        found = find_province(name)
        assert found is not None and found.code == "10", name
    assert find_province("chiang mai") is not None and find_province("chiang mai").name_th == "เชียงใหม่"  # type: ignore[union-attr]
    assert find_province("Atlantis") is None and find_province("99") is None


async def test_a_timer_set_after_a_slow_write_counts_from_the_writes_end() -> None:
    """After a local activity (the read-model write), the workflow's clock is the moment it completed (the SDK's
    core records it in the marker; seen with a dev server: ``now`` after a 1.5 s local activity was its
    completion time to the microsecond). Under load a write takes more than the half second ``_fires_at``
    rounds away, and a midnight deadline read from the task's start showed as 23:59 the day before."""
    import json

    from temporalio.api.common.v1 import Payload, Payloads
    from temporalio.api.enums.v1 import EventType
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import WorkflowHistory

    from activities.rebuild import LOCAL_ACTIVITY_MARKER
    from api.history import history_entries
    from config.settings import Settings
    from config.temporal import data_converter

    started = datetime(2026, 12, 5, 19, 2, 0, 100000, tzinfo=BANGKOK)
    wrote = started + timedelta(seconds=1, milliseconds=700)  # a write that took 1.7 s
    midnight = datetime(2026, 12, 9, 0, 0, tzinfo=BANGKOK)

    task = HistoryEvent(event_id=3, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    task.event_time.FromDatetime(started)
    marker = HistoryEvent(event_id=5, event_type=EventType.EVENT_TYPE_MARKER_RECORDED)
    marker.event_time.FromDatetime(wrote + timedelta(milliseconds=20))
    marker.marker_recorded_event_attributes.marker_name = LOCAL_ACTIVITY_MARKER
    done = {"seconds": int(wrote.timestamp()), "nanos": wrote.microsecond * 1000}
    data = {"seq": 1, "activity_type": "sla_policy", "complete_time": done}
    marker.marker_recorded_event_attributes.details["data"].CopyFrom(
        Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(data).encode())])
    )
    timer = HistoryEvent(event_id=6, event_type=EventType.EVENT_TYPE_TIMER_STARTED)
    timer.event_time.FromDatetime(wrote + timedelta(milliseconds=20))
    timer.timer_started_event_attributes.timer_id = "1"
    timer.timer_started_event_attributes.start_to_fire_timeout.FromTimedelta(midnight - wrote)

    entries = await history_entries(
        WorkflowHistory("complaint-RT-X", [task, marker, timer]), data_converter(Settings(env="test"))
    )
    (deadline,) = [e for e in entries if e.kind == "deadline_set"]
    assert datetime.fromisoformat(deadline.detail["fires_at"]) == midnight
    assert _deadline(deadline.detail["fires_at"]) == "ภายใน 8 ธ.ค. 2569"

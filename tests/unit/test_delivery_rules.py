"""Delivery's pure rules: templates (Thai and English, checked at load), channel order, backoff."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from delivery.dispatcher import channel_turn
from delivery.outbox import backoff_seconds
from delivery.templates import COMPLAINANT_EVENTS, DEFAULT_TEMPLATES_FILE, Facts, TemplateError, Templates, format_date
from workflows.process import TRANSITIONS, Audience

FACTS = Facts(
    event="accept",
    state="assignment",
    audience="complainant",
    case_id="RT-2569-000123",
    tracking_code="AB12CD34EF",
    agency={"th": "กรมการปกครอง", "en": "Department of Provincial Administration"},
    expected_by=date(2026, 12, 3),
    link="https://rongtuk.example/track/AB12CD34EF",
)


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load()


def test_dates_are_written_the_thai_way_in_thai_and_plainly_in_english() -> None:
    assert format_date(date(2026, 12, 3), "th") == "3 ธ.ค. 2569"
    assert format_date(date(2027, 1, 15), "th") == "15 ม.ค. 2570"
    assert format_date(date(2026, 12, 3), "en") == "3 Dec 2026"


def test_thai_message_has_the_code_agency_date_and_link(templates: Templates) -> None:
    message = templates.render(FACTS, "th")
    assert message.lang == "th"
    for part in ("AB12CD34EF", "กรมการปกครอง", "3 ธ.ค. 2569", "https://rongtuk.example/track/AB12CD34EF"):
        assert part in message.text
    assert "AB12CD34EF" in message.subject
    assert "ส่งต่อ" in message.text


def test_english_message_has_the_same_facts_in_english(templates: Templates) -> None:
    message = templates.render(FACTS, "en")
    for part in ("AB12CD34EF", "Department of Provincial Administration", "3 Dec 2026", FACTS.link):
        assert part in message.text
    assert "ธ.ค." not in message.text


def test_no_date_yet_says_so(templates: Templates) -> None:
    facts = Facts(**{**FACTS.__dict__, "expected_by": None})
    assert "จะแจ้งให้ทราบ" in templates.render(facts, "th").text
    assert "to be announced" in templates.render(facts, "en").text


def test_survey_link_only_when_given(templates: Templates) -> None:
    closed = Facts(**{**FACTS.__dict__, "event": "close", "state": "closed", "survey_link": "https://s/1"})
    assert "https://s/1" in templates.render(closed, "th").text
    assert "https://s/1" in templates.render(closed, "en").text
    assert "https://s/" not in templates.render(FACTS, "th").text


def test_staff_events_without_their_own_template_use_the_default(templates: Templates) -> None:
    staff = Facts(**{**FACTS.__dict__, "event": "request_extension", "state": "stage1", "audience": "supervisor"})
    message = templates.render(staff, "en")
    assert "RT-2569-000123" in message.text
    assert "Agency asked for more time" in message.text  # the process table's label
    assert "Agency is handling it" in message.text  # the state's label


def test_every_event_the_complainant_hears_of_has_both_languages(templates: Templates) -> None:
    events = {"filed", "followup"} | {t.event for t in TRANSITIONS if Audience.COMPLAINANT in t.notify}
    assert events == COMPLAINANT_EVENTS
    for event in events:
        for lang in ("th", "en"):
            facts = Facts(**{**FACTS.__dict__, "event": event})
            message = templates.render(facts, lang)
            assert "{" not in message.text + message.subject
            assert "AB12CD34EF" in message.text and "AB12CD34EF" in message.subject


def _broken(tmp_path: Path, change: object) -> Path:
    data = yaml.safe_load(DEFAULT_TEMPLATES_FILE.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path = tmp_path / "templates.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d["complainant"].pop("respond"), "no template for event(s) ['respond']"),
        (lambda d: d["complainant"]["close"].pop("en"), "complainant.close: no 'en' text"),
        (lambda d: d["complainant"]["close"]["th"].update(text="ชื่อ {name}"), "unknown placeholder(s) ['name']"),
        (lambda d: d["complainant"]["close"]["th"].update(text="วันที่ {expected_date!r}"), "format or conversion"),
        (lambda d: d["complainant"]["close"]["th"].update(text="วงเล็บ {"), "complainant.close.th.text"),
        (lambda d: d["staff"].pop("default"), "'default' template is required"),
        (lambda d: d["staff"].update(no_such_event=d["staff"]["default"]), "not an event"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["survey_footer"].update(th="แบบสอบถาม {link}"), "survey_footer.th"),
    ],
)
def test_a_broken_templates_file_is_refused_at_load(tmp_path: Path, change: object, complaint: str) -> None:
    with pytest.raises(TemplateError) as refused:
        Templates.load(_broken(tmp_path, change))
    assert complaint in str(refused.value)


def test_channels_are_tried_in_the_complainants_order() -> None:
    preferred = ["line", "sms", "web"]
    assert channel_turn("line", preferred, [("sms", "pending"), ("web", "pending")]) == "send"
    assert channel_turn("sms", preferred, [("line", "sending"), ("web", "pending")]) == "standby"
    assert channel_turn("sms", preferred, [("line", "failed"), ("web", "pending")]) == "send"
    assert channel_turn("web", preferred, [("line", "failed"), ("sms", "standby")]) == "standby"
    assert channel_turn("web", preferred, [("line", "failed"), ("sms", "sent")]) == "skipped"
    # A channel the complainant has since dropped comes after the ones they still want.
    assert channel_turn("email", ["sms"], [("sms", "pending")]) == "standby"


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_seconds(n, base=30, cap=600) for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]

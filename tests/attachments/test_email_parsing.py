"""Reading a message with the standard library: what becomes the complaint, and what is not one."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from api.schemas import ComplaintIn
from attachments.files import Prepared
from attachments.intake import with_photo_place
from config.settings import Settings
from intake_channels.email import Skip, complaint_of, read_message

OWN = frozenset({"no-reply@rongtuk.invalid", "complaints@rongtuk.example"})


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Somsak <somsak@example.org>")
    msg["Subject"] = headers.pop("Subject", "น้ำประปาไม่ไหล")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("น้ำประปาไม่ไหลมาสามวันแล้วในหมู่บ้าน\x00 ช่วยด้วย")
    return msg


def test_the_plain_text_sender_and_files_make_the_complaint() -> None:
    msg = message()
    msg.add_alternative("<p>ignored <script>x()</script></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 ...", maintype="application", subtype="pdf", filename="bill.pdf")
    mail = read_message(msg.as_bytes(), own_addresses=OWN, max_bytes=10**6)
    assert (mail.sender, mail.name, mail.subject) == ("somsak@example.org", "Somsak", "น้ำประปาไม่ไหล")
    assert "\x00" not in mail.text and "สามวัน" in mail.text
    assert [name for name, _ in mail.files] == ["bill.pdf"]
    complaint = complaint_of(mail)
    assert complaint.channel.value == "email" and complaint.complainant.email == "somsak@example.org"
    assert [c.value for c in complaint.complainant.preferred_channels] == ["email", "web"]


def test_html_only_mail_is_read_without_its_scripts() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "x"
    msg.set_content("<div>ถนนพัง<br>หน้าโรงเรียน</div><script>alert(1)</script>", subtype="html")
    mail = read_message(msg.as_bytes(), own_addresses=OWN, max_bytes=10**6)
    assert mail.text == "ถนนพัง\nหน้าโรงเรียน"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "auto_submitted"),
        ({"Precedence": "junk"}, "bulk"),
        ({"From": "Rongtuk <no-reply@rongtuk.invalid>"}, "own_message"),
        ({"X_Rongtuk_Notification": "12"}, "own_message"),
        ({"References": "<a@b> <rongtuk-notification-3.1@rongtuk>"}, "reply_to_notification"),
        ({"From": "Mail Delivery System <MAILER-DAEMON@example.org>"}, "bounce"),
        ({"From": "nobody"}, "no_sender"),
    ],
)
def test_what_is_not_a_complaint(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Skip) as skipped:
        read_message(message(**headers).as_bytes(), own_addresses=OWN, max_bytes=10**6)
    assert skipped.value.reason == reason


def test_too_large_and_too_short() -> None:
    with pytest.raises(Skip, match="too_large"):
        read_message(message().as_bytes(), own_addresses=OWN, max_bytes=100)
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg.set_content("hi")
    with pytest.raises(Skip, match="no_text"):
        complaint_of(read_message(msg.as_bytes(), own_addresses=OWN, max_bytes=10**6))


def _photo_at(lat: float, lon: float) -> Prepared:
    return Prepared("p.jpg", "0" * 64, "image/jpeg", b"x", b"x", "image/jpeg", lat, lon)


def test_a_photo_place_only_inside_thailand_and_only_when_none_was_given() -> None:
    settings = Settings(env="test")
    body = {"channel": "web", "description": "ไฟถนนดับทั้งซอย", "complainant": {}}
    placed = with_photo_place(body, [_photo_at(48.85, 2.35), _photo_at(18.79, 98.98)], settings)
    assert placed["location"] == {"latitude": 18.79, "longitude": 98.98}
    ComplaintIn.model_validate(placed)
    given = body | {"location": {"province": "Chiang Mai"}}
    assert with_photo_place(given, [_photo_at(18.79, 98.98)], settings) == given
    off = settings.model_copy(update={"attachment_gps_to_place": False})
    assert "location" not in with_photo_place(body, [_photo_at(18.79, 98.98)], off)

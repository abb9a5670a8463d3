"""One case through the staff consoles in Chromium: the officer screens it with the suggestions, the agency
accepts it from its inbox and asks for more time, the supervisor finds it overdue on the board and approves the
extension, the agency responds, and the auditor opens its history. Screenshots of each console are kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from api.auth import StaffRole
from store import models
from store.db import Database
from tests.api.conftest import first_in_queue
from tests.browser.conftest import Console, account


async def _case(db: Database, case_id: str) -> models.Case:
    async with db.sessions() as session:
        case = await session.get(models.Case, case_id)
        assert case is not None
        return case


async def test_a_case_through_every_staff_console(console: Console, db: Database) -> None:
    tag = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(base_url=console.base_url, timeout=30) as http:
        filed = await http.post(
            "/api/v1/complaints",
            json={
                "channel": "web",
                "priority": "urgent",
                "description": "ไฟฟ้าส่องสว่างบนถนนในซอยลาดพร้าว 71 ดับทั้งซอยมาสองสัปดาห์ กลางคืนมืดมากและอันตราย",
                "complainant": {"name": "สมชาย ใจดี", "phone": "0812345678", "preferred_channels": ["web"]},
                "location": {"province": "กรุงเทพมหานคร", "district": "เขตวังทองหลาง"},
            },
        )
        assert filed.status_code == 201, filed.text
        await first_in_queue(http, db, filed.json())
    case_id = filed.json()["case_id"]

    # The officer: the queue shows completeness and suggestions; one click accepts them.
    officer = await account(db, f"off-{tag}", StaffRole.OFFICER)
    page = await console.page()
    await console.sign_in(page, officer)
    await page.goto(f"{console.base_url}/officer")
    row = page.locator(f"tr[data-case='{case_id}']")
    await row.locator("button[data-action=screen]").click()
    await page.wait_for_url("**/officer?done=screen*")
    await page.goto(f"{console.base_url}/case/{case_id}")
    assert await page.locator("#screening .suggest li").count() >= 2
    await console.shot(page, "officer-case")
    await page.goto(f"{console.base_url}/officer")
    assert await row.locator(".suggested-category").inner_text()
    assert await row.locator(".suggested-agency").count() >= 1
    await console.shot(page, "officer-queue")
    await row.locator("button.accept-suggested").click()
    await page.wait_for_url("**/officer?done=accept*")
    said = await page.locator("#done").inner_text()
    assert said == f"รับเรื่องและส่งต่อหน่วยงาน: {case_id}", "the list says what the click did"
    case = await _case(db, case_id)
    assert case.status == "assignment" and case.agencies
    code = case.agencies[0]
    await page.goto(f"{console.base_url}/case/{case_id}")
    assert "สมชาย ใจดี" in await page.locator("#complainant").inner_text()
    await page.goto(f"{console.base_url}/agency")
    assert "ไม่มีสิทธิ์" in await page.locator("main").inner_text(), "an officer has no agency inbox"

    # The agency: its inbox lists the task; accept with one click, then ask for more time on the case page.
    agent = await account(db, f"ag-{tag}", StaffRole.AGENCY, agency=code)
    page = await console.page()
    await console.sign_in(page, agent)
    await page.goto(f"{console.base_url}/agency")
    row = page.locator(f"tr[data-case='{case_id}']")
    await console.shot(page, "agency-inbox")
    await row.locator("button[data-action=agency_accept]").click()
    await page.wait_for_url("**/agency?done=agency_accept*")
    assert await page.locator("#done").inner_text() == f"หน่วยงานรับเรื่องแล้ว: {case_id}"
    assert (await _case(db, case_id)).status == "stage1"
    await page.goto(f"{console.base_url}/case/{case_id}")
    await page.fill("#request_extension-reason", "ต้องรอผลการตรวจสอบจากการไฟฟ้านครหลวง")
    await page.fill("#request_extension-working_days", "3")  # an urgent case may be granted 3 more working days at most
    await page.click("#form-request_extension button")
    await page.wait_for_url("**?done=request_extension")

    # The dev server's clock does not jump: the step's deadline is moved into the past in the read model.
    async with db.sessions() as session:
        past = datetime.now(UTC) - timedelta(days=3)
        await session.execute(update(models.Case).where(models.Case.case_id == case_id).values(due_at=past))
        await session.commit()

    # The supervisor: the case is on the overdue board; the extension is approved from the case page.
    supervisor = await account(db, f"sup-{tag}", StaffRole.SUPERVISOR)
    sup = await console.page()
    await console.sign_in(sup, supervisor)
    await sup.goto(f"{console.base_url}/board?overdue=true")
    assert await sup.locator(f"#board tr[data-case='{case_id}'] .badge.late").count() == 1
    await console.shot(sup, "supervisor-board")
    await sup.click(f"#board tr[data-case='{case_id}'] a")
    assert await sup.locator("#diagram svg g[data-current='true']").get_attribute("data-state") == "stage1"
    await console.shot(sup, "supervisor-case")
    assert await sup.input_value("#approve_extension-agency") == code, "the agency that asked is filled in"
    await sup.click("#form-approve_extension button")
    await sup.wait_for_url("**?done=approve_extension")
    async with db.sessions() as session:
        query = select(models.CaseEvent.event).where(models.CaseEvent.case_id == case_id)
        events = list(await session.scalars(query))
    assert "approve_extension" in events, events

    # The agency responds; the complainant's tracking page shows the answer.
    await page.goto(f"{console.base_url}/case/{case_id}")
    await page.select_option("#respond-outcome", "resolved")
    await page.fill("#respond-response", "ซ่อมไฟฟ้าส่องสว่างครบทั้งซอยแล้ว")
    await page.click("#form-respond button")
    await page.wait_for_url("**?done=respond")
    assert (await _case(db, case_id)).status == "responded"

    # The auditor: the full history from Temporal, verified, and the access log shows who read the case.
    auditor = await account(db, f"aud-{tag}", StaffRole.AUDITOR)
    aud = await console.page()
    await console.sign_in(aud, auditor)
    await aud.goto(f"{console.base_url}/audit")
    await aud.fill("#open", case_id)
    await aud.click("form[action='/audit'] button")
    await aud.wait_for_url(f"**/audit/case/{case_id}")
    assert await aud.locator("#history tbody tr").count() >= 5
    assert await aud.locator("#verify.pass").count() == 1
    # Every transition, named as the process table names it, with who made it and the state it left.
    transitions = [t.split("\t") for t in await aud.locator("#history tr.transition").all_inner_texts()]
    assert len(transitions) == 7, transitions
    assert "ได้รับเรื่องร้องทุกข์" in transitions[0][2] and officer in transitions[1][4]
    await console.shot(aud, "auditor-history")
    await aud.goto(f"{console.base_url}/audit?case_id={case_id}")
    log = await aud.locator("#access-log").inner_text()
    assert officer in log and agent in log
    await console.shot(aud, "auditor-access-log")
    await aud.goto(f"{console.base_url}/status")
    assert await aud.locator("#ready.pass").count() == 1
    await console.shot(aud, "ops-status")
    for p in (page, sup, aud):
        assert p.outside == []

"""A citizen files a complaint and tracks it on a phone-sized screen, in Thai, with nothing from the internet."""

from __future__ import annotations

from tests.browser.conftest import Console


async def test_citizen_files_and_tracks_on_a_phone(console: Console) -> None:
    page = await console.page(phone=True)
    await page.goto(f"{console.base_url}/file")
    assert await page.locator("html").get_attribute("lang") == "th"
    font = await page.locator("body").evaluate("e => getComputedStyle(e).fontFamily")
    assert font.startswith('"Noto Sans Thai"')
    assert await page.evaluate("document.fonts.check('16px \"Noto Sans Thai\"')")
    # Nothing wider than the phone: no sideways scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.select_option("#category", index=1)
    await page.fill("#description", "ไฟถนนหน้าบ้านเลขที่ 12 ดับมาสองสัปดาห์ กลางคืนมืดมาก อันตรายต่อคนเดินถนน")
    await page.select_option("#province_code", "50")  # เชียงใหม่
    visible = await page.locator("#district_code optgroup:not([hidden])").count()
    assert visible == 1, "the district list narrows to the chosen province"
    await page.select_option("#district_code", "5001")
    await page.fill("#name", "สมหญิง รักดี")
    await page.fill("#phone", "081-234-5678")
    await page.check("input[name=preferred_channels][value=sms]")
    await console.shot(page, "citizen-file")
    await page.click("#complaint-form button[type=submit]")
    await page.wait_for_url("**/track/*?new=1")
    code = (await page.locator("#tracking-code").inner_text()).strip()
    assert len(code.replace("-", "")) == 10
    main = await page.locator("main").inner_text()
    assert "ได้รับเรื่องของท่านแล้ว" in main and "สมหญิง" not in main and "5678" not in main
    await console.shot(page, "citizen-receipt")

    # Later, from another phone: the code is enough.
    other = await console.page(phone=True)
    await other.goto(f"{console.base_url}/track")
    await other.fill("#code", code.lower())
    await other.click("main button[type=submit]")
    await other.wait_for_url(f"**/track/{code.lower()}")
    assert (await other.locator("#tracking-code").inner_text()).strip() == code
    assert await other.locator("#status").inner_text()
    assert await other.locator("#form-withdraw").count() == 1, "the complainant may withdraw"
    assert await other.evaluate("document.documentElement.scrollWidth") <= 390
    # A long label ("A review may be asked until", on a closed case in English) wraps in its own column
    # instead of squeezing the values into a word a line.
    share = await other.evaluate(
        """() => {
            const facts = document.querySelector("dl.facts");
            const label = facts.querySelector("dt");
            label.textContent = "A review of this case may be asked for until";
            const value = label.nextElementSibling;
            return value.getBoundingClientRect().width / facts.getBoundingClientRect().width;
        }"""
    )
    assert share > 0.5, share
    await other.reload()
    await console.shot(other, "citizen-track")
    await other.click("#withdraw-toggle")  # folded away: withdrawing ends the case
    await other.fill("#withdraw-reason", "แก้ไขได้เองแล้ว")
    await other.click("#form-withdraw button")
    await other.wait_for_url("**?done=withdraw")
    assert "ถอนเรื่อง" in await other.locator("#status").inner_text() or await other.locator(".ok").count() == 1
    assert page.outside == [] and other.outside == []

"""The HTML report in a real headless Chromium: boxes where the results say, highlighting, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatocr.viewer import ReportItem, write_report
from tests.viewer.browser import chromium
from tests.viewer.conftest import SCRIPT

pytest.importorskip("selenium", reason="selenium is in the dev extra (bash scripts/setup.sh --test)")
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

pytestmark = pytest.mark.slow

# Installed before any script of the page runs: every window.alert/confirm/prompt call is recorded.
WATCH = """
window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) window[name] = (m) => { window.__alerts.push(String(m)); };
"""


def _open(driver: object, report: Path) -> None:
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})  # type: ignore[attr-defined]
    driver.get(report.as_uri())  # type: ignore[attr-defined]
    assert driver.execute_script("return document.documentElement.dataset.ready") == "true"  # type: ignore[attr-defined]


def test_report_of_three_documents_in_chromium(three_items: list[ReportItem], tmp_path: Path) -> None:
    report = write_report(tmp_path / "report.html", three_items)
    with chromium() as driver:
        _open(driver, report)
        assert len(driver.find_elements("css selector", "#doc-list li")) == 3

        # 1. Every field's box is drawn where the result says: page coordinates x the displayed scale.
        first = three_items[0]
        svg = driver.find_element("css selector", "#document .page svg")
        frame = svg.rect
        scale = frame["width"] / first.document.pages[0].width
        assert scale > 0
        checked = 0
        for name, field in first.result.fields.items():
            boxes = driver.find_elements("css selector", f'#document .field-box[data-field="{name}"]')
            assert len(boxes) == len(field.evidence)
            for box, evidence in zip(boxes, field.evidence, strict=True):
                rect = box.rect
                xs = [p[0] for p in evidence.box]
                ys = [p[1] for p in evidence.box]
                assert rect["x"] == pytest.approx(frame["x"] + min(xs) * scale, abs=3)
                assert rect["y"] == pytest.approx(frame["y"] + min(ys) * scale, abs=3)
                assert rect["width"] == pytest.approx((max(xs) - min(xs)) * scale, abs=4)
                assert rect["height"] == pytest.approx((max(ys) - min(ys)) * scale, abs=4)
                checked += 1
        assert checked >= 3
        lines = driver.find_elements("css selector", "#document .ocr-line")
        assert len(lines) == len(first.document.lines)

        # 2. Hovering a field highlights its boxes; clicking one pins them (and only them); clicking a
        #    box names its field.
        ActionChains(driver).move_to_element(driver.find_element("css selector", 'tr[data-field="date"]')).perform()
        assert {b.get_attribute("data-field") for b in driver.find_elements("css selector", ".field-box.active")} == {
            "date"
        }
        driver.find_element("css selector", '#document tr.field-row[data-field="total"]').click()
        for box in driver.find_elements("css selector", "#document .field-box"):
            assert ("active" in box.get_attribute("class").split()) == (box.get_attribute("data-field") == "total")
        assert "active" in driver.find_element("css selector", 'tr[data-field="total"]').get_attribute("class")
        company = driver.find_element("css selector", '#document .field-box[data-field="company"]')
        driver.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", company)
        assert "company" in driver.find_element("id", "selection").text
        assert "active" in driver.find_element("css selector", 'tr[data-field="company"]').get_attribute("class")
        driver.save_screenshot(str(tmp_path / "receipt.png"))

        # 3. The keyboard moves between documents; the hostile one: its text shows as text, nothing ran,
        #    its ungrounded value is marked.
        driver.find_element("tag name", "body").send_keys(Keys.ARROW_DOWN)
        assert "X51005433541" in driver.find_element("css selector", "#document h2").text
        driver.find_element("css selector", '#doc-list li[data-doc="2"]').click()
        value = driver.find_element("css selector", 'tr[data-field="company"] td.value').text
        assert value == SCRIPT
        assert driver.find_element("css selector", 'tr[data-field="address"] td.value').text.startswith("<img src=x")
        assert driver.execute_script("return window.__alerts") == []
        assert driver.execute_script("return document.scripts.length") == 2  # the data block and the page's own
        assert driver.find_elements("css selector", "#document img") == []
        date_row = driver.find_element("css selector", 'tr[data-field="date"]')
        assert "ungrounded" in date_row.get_attribute("class") and "not in document" in date_row.text
        assert "low confidence" in driver.find_element("css selector", 'tr[data-field="total"]').text
        assert "is missing" in driver.find_element("id", "document").text
        assert SCRIPT in driver.find_element("css selector", "#document svg").text  # drawn on the blank page
        driver.save_screenshot(str(tmp_path / "hostile.png"))
        assert (tmp_path / "receipt.png").stat().st_size > 10_000

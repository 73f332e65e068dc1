"""`chatocr review` as a real process, its page in a real headless Chromium: fix a field by clicking
an OCR line, save, reload and see the fix; the keyboard (fields, accept, undo, accept the rest,
documents, typing a fix, append a line with Shift); document text shown as text, nothing run; two
tabs correcting the same field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.review.conftest import HOSTILE, SCRIPT, ResultsSet, Server
from tests.viewer.browser import chromium

pytest.importorskip("selenium", reason="selenium is in the dev extra (bash scripts/setup.sh --test)")
pytest.importorskip("fastapi", reason="the serve extra")
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow

# Installed before any script of the page runs: every window.alert/confirm/prompt call is recorded.
WATCH = """
window.__alerts = [];
for (const name of ["alert", "confirm", "prompt"]) window[name] = (m) => { window.__alerts.push(String(m)); };
"""


def _open(driver: Any, url: str) -> None:
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    driver.get(url)
    _wait_shown(driver)


def _wait_shown(driver: Any) -> None:
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.documentElement.dataset.shown") == "true"
    )
    _idle(driver)


def _idle(driver: Any) -> None:
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.documentElement.dataset.busy") == "false"
    )


def _doc(driver: Any) -> str:
    return str(driver.execute_script("return document.documentElement.dataset.doc"))


def _row(driver: Any, name: str) -> Any:
    return driver.find_element("css selector", f'#document tr.field-row[data-field="{name}"]')


def _selected(driver: Any) -> str:
    return str(driver.find_element("css selector", "#document tr.field-row.selected").get_attribute("data-field"))


def _press(driver: Any, *keys: str) -> None:
    for key in keys:
        ActionChains(driver).send_keys(key).perform()
        _idle(driver)


def _value(driver: Any, name: str) -> str:
    return str(_row(driver, name).find_element("css selector", ".value").text)


def _badge(driver: Any, name: str) -> str:
    found = _row(driver, name).find_elements("css selector", "[class*='review-']")
    return str(found[0].text) if found else ""


def _click_line(driver: Any, line_id: str, shift: bool = False) -> None:
    polygon = driver.find_element("css selector", f'#document .ocr-line[data-line="{line_id}"]')
    actions = ActionChains(driver)
    if shift:
        actions.key_down(Keys.SHIFT)
    actions.move_to_element(polygon).click()
    if shift:
        actions.key_up(Keys.SHIFT)
    actions.perform()


def test_fix_by_clicking_a_line_then_reload(review_server: tuple[Server, ResultsSet]) -> None:
    server, results = review_server
    document = results.documents[0]
    line = next(line for line in document.lines if "TOTAL" in line.text.upper())
    with chromium() as driver:
        _open(driver, server.url)
        assert results.images[0].name in driver.find_element("css selector", "#document h2").text
        assert len(driver.find_elements("css selector", "#doc-list li")) == len(results.images)
        assert len(driver.find_elements("css selector", "#document .ocr-line")) == len(document.lines)
        image = driver.find_element("css selector", "#document .page img")
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 0  # the results' own image, served
        _row(driver, "total").click()
        _click_line(driver, line.id)
        assert driver.find_element("id", "editor").get_attribute("value") == line.text
        assert "picked" in driver.find_element("css selector", f'.ocr-line[data-line="{line.id}"]').get_attribute(
            "class"
        )
        _press(driver, Keys.ENTER)
        assert _value(driver, "total") == line.text and _badge(driver, "total").startswith("fixed")
        driver.refresh()
        _wait_shown(driver)
        assert _value(driver, "total") == line.text and "tester" in _badge(driver, "total")
        # The fixed value's box is the chosen line's.
        (box,) = driver.find_elements("css selector", '#document .field-box[data-field="total"]')
        drawn = [float(c) for c in box.get_attribute("points").split()]
        assert drawn == pytest.approx([c for point in line.box for c in point], abs=0.06)
    (event,) = results.lines()
    assert event["action"] == "fix" and event["new"] == line.text and event["reviewer"] == "tester"
    assert event["lines"][0]["id"] == line.id and event["lines"][0]["box"] == [list(p) for p in line.to_dict()["box"]]


def test_the_keyboard_reviews_a_document(review_server: tuple[Server, ResultsSet]) -> None:
    server, results = review_server
    document = results.documents[0]
    with chromium() as driver:
        _open(driver, server.url)
        order = [
            row.get_attribute("data-field") for row in driver.find_elements("css selector", "#document tr.field-row")
        ]
        first = _selected(driver)
        assert first == order[0]
        _press(driver, "j")
        assert _selected(driver) == order[1]
        _press(driver, "k", "a")  # back up, accept: the next open field is selected
        assert _badge(driver, order[0]).startswith("accepted") and _selected(driver) == order[1]
        _press(driver, "u")  # undo the accept
        assert _badge(driver, order[0]) == ""
        # Shift-click appends a line to the value; Enter saves it.
        lines = [line for line in document.lines if line.text.strip()][2:4]
        _row(driver, "address").click()
        _click_line(driver, lines[0].id)
        _click_line(driver, lines[1].id, shift=True)
        assert driver.find_element("id", "editor").get_attribute("value") == f"{lines[0].text} {lines[1].text}"
        _press(driver, Keys.ENTER)
        assert _value(driver, "address") == f"{lines[0].text} {lines[1].text}"
        # Type a fix.
        _row(driver, "date").click()
        _press(driver, "e")
        editor = driver.find_element("id", "editor")
        editor.clear()
        editor.send_keys("01/01/2020", Keys.ENTER)
        _idle(driver)
        assert _value(driver, "date") == "01/01/2020" and _badge(driver, "date").startswith("fixed")
        _press(driver, "A")  # accept the rest
        assert all(_badge(driver, name) for name in order)
        assert (
            driver.find_element("css selector", '#doc-list li[data-number="0"] .count').text
            == f"{len(order)}/{len(order)}"
        )
        _press(driver, "n")
        assert (
            _doc(driver) == "1" and results.images[1].name in driver.find_element("css selector", "#document h2").text
        )
        _press(driver, "p")
        assert _doc(driver) == "0"
        _press(driver, "d")  # the selected field: not in the document
    actions = [event["action"] for event in results.lines()]
    assert actions.count("undo") == 1 and actions.count("fix") >= 3


def test_document_text_shows_as_text_and_nothing_runs(review_server: tuple[Server, ResultsSet]) -> None:
    server, results = review_server
    last = len(results.images) - 1
    with chromium() as driver:
        _open(driver, f"{server.url}#{last}")
        assert _doc(driver) == str(last)
        assert _value(driver, "company") == HOSTILE and _value(driver, "address") == SCRIPT
        assert driver.find_elements("css selector", "#document img[src='x']") == []
        assert driver.find_elements("css selector", "#document .value script") == []
        _row(driver, "company").click()
        _click_line(driver, "p0-l1")
        assert driver.find_element("id", "editor").get_attribute("value") == SCRIPT
        _press(driver, Keys.ENTER)
        assert _value(driver, "company") == SCRIPT
        driver.refresh()
        _wait_shown(driver)
        assert driver.execute_script("return window.__alerts") == []
    assert results.lines()[-1]["new"] == SCRIPT


def test_two_tabs_correcting_the_same_field(review_server: tuple[Server, ResultsSet]) -> None:
    server, results = review_server
    with chromium() as driver:
        _open(driver, server.url)
        first_tab = driver.current_window_handle
        driver.switch_to.new_window("tab")
        _open(driver, server.url)
        for handle, value in ((first_tab, "1.00"), (driver.current_window_handle, "2.00")):
            driver.switch_to.window(handle)
            _row(driver, "total").click()
            _press(driver, "e")
            editor = driver.find_element("id", "editor")
            editor.clear()
            editor.send_keys(value, Keys.ENTER)
            _idle(driver)
        driver.switch_to.window(first_tab)
        assert _value(driver, "total") == "1.00"  # what this tab saved, until it reloads
        driver.refresh()
        _wait_shown(driver)
        assert _value(driver, "total") == "2.00"  # the later correction is current
    fixes = [event["new"] for event in results.lines() if event["field"] == "total"]
    assert fixes == ["1.00", "2.00"]  # both kept
    assert json.loads(results.review_file.read_text(encoding="utf-8").splitlines()[0])["chatocr_review"] == 1

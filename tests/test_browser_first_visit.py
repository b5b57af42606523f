"""A new visitor's third pass (issue 36) in a real browser (Debian's chromium driven by
Playwright), at 1440x1000 and 390x844: Branch says beforehand what it would do and keeps a typed
seed, finished comparisons are clean with the overlay one click away, the Edit examples set
their own class under a readable label, Understand says where raster's initial tokens are, and
a phone sees every tab and reaches what it came for. Each tab's screenshot, desktop and phone,
goes to tests/artifacts/tabs/ (copied to docs/screenshots/)."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.test_browser import ARGS, ARTIFACTS, TIMEOUT_MS, chromium  # noqa: F401 (fixture)

DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}
TABS = ("Generate", "Compare", "Edit", "Understand", "Measure")
SHOTS = ARTIFACTS / "tabs"


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):  # noqa: F811
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(chromium),
            headless=True, args=ARGS)
        try:
            yield context
        finally:
            context.close()


def visit(browser, app, viewport: dict):
    """A fresh visitor: a new page, so a new session with no run yet."""
    page = browser.new_page()
    page.set_viewport_size(viewport)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app.url)
    page.locator("#gen-run").wait_for()
    return page


def shown_picture(page, selector: str) -> np.ndarray:
    """The pixels of the picture an <img> shows, fetched as the browser would."""
    src = page.locator(selector).get_attribute("src")
    body = page.request.get(src).body()
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def generate(page, parallel: str = "16x") -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-parallel").get_by_text(parallel, exact=True).click()
    page.locator("#gen-run").click()
    expect(page.locator("#gen-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    expect(page.locator("#gen-step input[type=range]")).to_be_enabled(timeout=TIMEOUT_MS)


def compare_without_the_1x_run(page) -> None:
    """The default comparison less raster 1x (256 steps): the longest then takes 67."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-orderings").get_by_text("raster 1x: ").click()
    page.locator("#cmp-run").click()
    expect(page.locator("#cmp-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    expect(page.locator("#cmp-frame img")).to_be_visible()


def test_branch_says_beforehand_keeps_a_typed_seed_and_ends_clean(browser, app):
    from playwright.sync_api import expect

    page = visit(browser, app, DESKTOP)
    page.get_by_role("tab", name="Edit").click()
    check, button = page.locator("#branch-check"), page.locator("#branch-run")
    expect(button).to_be_disabled()  # no red toast, no red pills: nothing to click yet
    expect(check).to_contain_text("Nothing to branch yet")
    assert page.get_by_text("Error", exact=True).count() == 0

    generate(page)  # 31 steps; the replay slider stands on the last one
    page.get_by_role("tab", name="Edit").click()
    expect(check).to_contain_text("move it back")
    expect(button).to_be_disabled()
    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-step input[type=range]").fill("16")
    page.get_by_role("tab", name="Edit").click()
    expect(check).to_contain_text("after step 16 of 31")
    expect(button).to_be_enabled()

    page.locator("#branch-seed input").fill("123")
    button.click()
    status = page.locator("#branch-status")
    expect(status).to_contain_text("Done", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("seeds 123, 124, 125, 126")  # the seed typed in
    expect(page.locator("#branch-seed input")).to_have_value("123")

    clean = shown_picture(page, "#branch-frame img")
    src = page.locator("#branch-frame img").get_attribute("src")
    page.locator("#branch-final-overlay input").check()
    expect(page.locator("#branch-frame img")).not_to_have_attribute("src", src)
    assert not np.array_equal(shown_picture(page, "#branch-frame img"), clean)
    page.close()


def test_a_comparison_ends_clean_with_the_overlay_one_click_away(browser, app):
    from playwright.sync_api import expect

    page = visit(browser, app, DESKTOP)
    compare_without_the_1x_run(page)
    frame = page.locator("#cmp-frame img")
    clean, src = shown_picture(page, "#cmp-frame img"), frame.get_attribute("src")
    switch = page.locator("#cmp-final-overlay input")
    switch.check()
    expect(frame).not_to_have_attribute("src", src)
    covered, src = shown_picture(page, "#cmp-frame img"), frame.get_attribute("src")
    assert covered.shape == clean.shape and not np.array_equal(covered, clean)
    switch.uncheck()
    expect(frame).not_to_have_attribute("src", src)
    assert np.array_equal(shown_picture(page, "#cmp-frame img"), clean)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_an_edit_example_sets_its_class_under_a_readable_label(browser, app, viewport):
    from playwright.sync_api import expect

    page = visit(browser, app, viewport)
    page.get_by_role("tab", name="Edit").click()
    page.get_by_label("Example emoji").click()
    options = page.get_by_role("option").all_inner_texts()
    assert options and not any(re.search(r"\d+: \d+:", o) for o in options), options
    first = options[0]
    page.get_by_role("option").first.click()
    expect(page.locator("#edit-source-note")).to_contain_text("Example", timeout=20_000)
    name = first.split(". ", 1)[1]
    expect(page.locator("#edit-class input")).to_have_value(re.compile(rf"^\d+: {name}$"))

    label = page.locator("#edit-editor-label").bounding_box()
    for tool in page.locator("#edit-editor button").all():
        box = tool.bounding_box()
        if box and tool.is_visible():
            apart = (box["y"] >= label["y"] + label["height"] or
                     box["y"] + box["height"] <= label["y"] or
                     box["x"] >= label["x"] + label["width"] or
                     box["x"] + box["width"] <= label["x"])
            assert apart, f"a tool of the editor covers its label: {box} over {label}"
    page.close()


def test_understand_says_where_raster_puts_its_initial_tokens(browser, app):
    from playwright.sync_api import expect

    page = visit(browser, app, DESKTOP)
    page.get_by_role("tab", name="Understand").click()
    text = page.locator("#par-understand-text")
    # the shown tab's controls: the other tabs' radios of the same names are hidden
    page.get_by_role("radio", name="16x", exact=True).check()
    page.get_by_role("radio", name="raster", exact=True).check()
    expect(text).to_contain_text("raster 16x")
    expect(text).to_contain_text("top row")
    assert "one per region" not in text.inner_text().replace("not one per region", "")
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_tab_screenshot(browser, app, viewport):
    """Each tab after a run, as a visitor sees it first (saved for docs/screenshots/)."""
    from playwright.sync_api import expect

    device = "phone" if viewport is PHONE else "desktop"
    page = visit(browser, app, viewport)
    generate(page, "4x")
    compare_without_the_1x_run(page)
    page.get_by_role("tab", name="Edit").click()
    page.get_by_label("Example emoji").click()
    page.get_by_role("option").first.click()
    page.get_by_role("button", name="Regenerate the region").click()
    expect(page.locator("#edit-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    for tab in TABS:
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(800)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOTS / f"{device}_{tab.lower()}.png"), full_page=True)
    page.close()


def test_a_phone_sees_every_tab_reaches_generate_and_compares_from_the_first_panel(browser, app):
    from playwright.sync_api import expect

    page = visit(browser, app, PHONE)
    assert [t for t in TABS if page.get_by_role("tab", name=t).is_visible()] == list(TABS)
    run = page.locator("#gen-run").bounding_box()
    assert run["y"] + run["height"] <= PHONE["height"], run  # no scrolling to find it

    compare_without_the_1x_run(page)
    expect(page.locator("#cmp-scroll-hint")).to_be_visible()
    picture = page.locator("#cmp-frame img").bounding_box()
    holder = page.locator("#cmp-frame .image-container").bounding_box()
    assert picture["width"] > holder["width"]  # full size, scrolled sideways
    assert picture["x"] >= holder["x"] - 1, (picture, holder)  # the first panel in view

    page.get_by_role("tab", name="Edit").click()
    page.wait_for_timeout(500)
    assert page.evaluate("document.documentElement.scrollHeight") < 5200  # was 5,740 px
    page.close()

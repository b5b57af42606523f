"""A real browser (Debian's chromium driven by Playwright) opens the page, runs a generation,
sees the final image, replays its steps, makes and downloads the GIF, stops a run, is refused,
and on a phone-sized screen sees the run it started; screenshots go to tests/artifacts/."""
from __future__ import annotations

import os
import re
from pathlib import Path

import imageio.v3 as iio
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("PAR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (PAR_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return CHROMIUM


def test_browser_generates_and_downloads_the_gif(app, chromium, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=ARGS,
            accept_downloads=True, viewport={"width": 1440, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            outside = []  # the page must work offline: nothing fetched from other hosts
            page.on("request", lambda r: outside.append(r.url)
                    if not r.url.startswith((app.url, "data:", "blob:")) else None)
            page.goto(app.url)
            run = page.locator("#gen-run")
            expect(run).to_be_enabled()
            assert run.bounding_box()["y"] + run.bounding_box()["height"] <= 1000  # in view

            run.click()
            status = page.locator("#gen-status")
            expect(status).to_contain_text("Done", timeout=TIMEOUT_MS)
            expect(status).to_contain_text("67 steps")
            image = page.locator("#gen-image img")
            expect(image).to_be_visible()
            size = image.evaluate("img => [img.naturalWidth, img.naturalHeight, img.complete]")
            assert size == [256, 256, True]
            rendering = image.evaluate("img => getComputedStyle(img).imageRendering")
            assert rendering in ("pixelated", "crisp-edges")  # enlarged and crisp

            # the replay slider: back to step 10, the pictures of step 10
            step = page.locator("#gen-step input[type=range]")
            expect(step).to_be_enabled(timeout=TIMEOUT_MS)
            assert step.get_attribute("max") == "67" and step.input_value() == "67"
            final_src = image.get_attribute("src")
            step.fill("10")
            expect(image).not_to_have_attribute("src", final_src, timeout=TIMEOUT_MS)

            page.locator("#gen-export").click()
            gif_button = page.locator("#gen-gif")
            expect(gif_button).to_be_enabled(timeout=TIMEOUT_MS)
            with page.expect_download(timeout=TIMEOUT_MS) as download_info:
                gif_button.click()
            download = download_info.value
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            assert saved.suffix == ".gif"
            assert iio.imread(saved, index=None).shape[0] == 67  # one frame per step

            page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)

            stop_a_long_run(page)
            refuse_an_unknown_class(page)

            # the Understand tab: Figure 3 of the explorer and the last run's uncertainty
            page.get_by_role("tab", name="Understand").click()
            expect(page.locator("#sch-figure img")).to_be_visible()
            expect(page.locator("#unc-map img")).to_be_visible()
            expect(page.locator("#par-understand-text")).to_contain_text("16×16 grid")
            page.screenshot(path=str(ARTIFACTS / "browser_understand.png"), full_page=True)

            phone = context.new_page()
            phone.set_viewport_size({"width": 390, "height": 844})
            phone.set_default_timeout(TIMEOUT_MS)
            phone.goto(app.url)
            phone.locator("#gen-run").click()  # far below the top: the controls come first
            in_view = """() => { const box = document.getElementById('gen-status')
                .getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; }"""
            phone.wait_for_function(in_view)  # the page brought the run into view
            expect(phone.locator("#gen-status")).to_contain_text("Done", timeout=TIMEOUT_MS)
            phone.screenshot(path=str(ARTIFACTS / "browser_phone.png"))
            assert outside == []
        finally:
            context.close()


def pick(page, parallel: str, order: str) -> None:
    from playwright.sync_api import expect

    page.locator("#gen-parallel").get_by_text(parallel, exact=True).click()
    page.locator("#gen-order").get_by_text(order, exact=True).click()
    expect(page.locator("#gen-check")).to_contain_text(f"{order} {parallel}")


def stop_a_long_run(page) -> None:
    """Stop is a normal outcome: where the run ended, in a neutral line, no error badges. A
    256-step run of the embedded model takes about a second, so Stop may arrive after it
    finished: then the run's own Done line stands (the HTTP tests stop runs mid-way for sure)."""
    from playwright.sync_api import expect

    pick(page, "1x", "raster")  # 256 steps
    status = page.locator("#gen-status")
    for attempt in range(12):
        page.locator("#gen-run").click()
        expect(status).to_contain_text(re.compile("Starting|Step "), timeout=TIMEOUT_MS)
        page.locator("#gen-stop").click()
        expect(status).to_contain_text(re.compile("Stopped at step|Done"), timeout=TIMEOUT_MS)
        page.wait_for_timeout(500)  # Stop's own answer, if it came after the Done line
        assert page.get_by_text("Error", exact=True).count() == 0
        if "Done" in status.inner_text():
            assert "nothing to stop" not in status.inner_text()
            continue
        assert re.search(r"Stopped at step \d+ of 256", status.inner_text())
        expect(page.locator("#gen-image img")).to_be_visible()  # the state it reached
        expect(page.locator("#gen-step input[type=range]")).to_be_enabled(timeout=TIMEOUT_MS)
        page.screenshot(path=str(ARTIFACTS / "browser_stopped.png"))
        break
    pick(page, "4x", "distant")


def refuse_an_unknown_class(page) -> None:
    """A refused request leaves no earlier pictures standing as if they were its answer."""
    from playwright.sync_api import expect

    klass = page.locator("#gen-class input")
    klass.fill("no such class")
    klass.press("Enter")
    page.locator("#gen-run").click()
    expect(page.locator("#gen-status")).to_contain_text("Not run", timeout=TIMEOUT_MS)
    expect(page.locator("#gen-image img")).to_have_count(0)
    expect(page.locator("#gen-step input[type=range]")).to_be_hidden()  # nothing to replay

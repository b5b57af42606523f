"""A real browser (Debian's chromium driven by Playwright) opens the page, runs a generation,
sees the final image, makes and downloads the GIF, and keeps a screenshot in tests/artifacts/."""
from __future__ import annotations

import os
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

            # the Understand tab: Figure 3 of the explorer and the last run's uncertainty
            page.get_by_role("tab", name="Understand").click()
            expect(page.locator("#sch-figure img")).to_be_visible()
            expect(page.locator("#unc-map img")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "browser_understand.png"), full_page=True)
            assert outside == []
        finally:
            context.close()

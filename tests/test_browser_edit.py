"""A real browser (Debian's chromium driven by Playwright) on the Edit tab: loads an example
emoji, picks a preset region, regenerates it and sees the result; then paints a region with the
brush and regenerates that. Screenshots go to tests/artifacts/."""
from __future__ import annotations

from tests.test_browser import ARGS, ARTIFACTS, TIMEOUT_MS, chromium  # noqa: F401 (fixture)


def test_browser_regenerates_a_preset_then_a_painted_region(app, chromium, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(chromium), headless=True, args=ARGS,
            viewport={"width": 1440, "height": 1100})
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(app.url)
            page.get_by_role("tab", name="Edit").click()
            page.get_by_label("Example emoji").click()
            page.get_by_role("option").first.click()
            expect(page.locator("#edit-source-note")).to_contain_text("Example", timeout=20_000)
            page.get_by_label("left", exact=True).check()
            page.get_by_role("button", name="Regenerate the region").click()
            status = page.locator("#edit-status")
            expect(status).to_contain_text("Done", timeout=TIMEOUT_MS)
            expect(status).to_contain_text("128 kept")
            expect(page.locator("#edit-source-note")).to_contain_text("PSNR")
            image = page.locator("#edit-image img")
            expect(image).to_be_visible()
            assert image.evaluate("img => [img.naturalWidth, img.complete]") == [256, True]
            expect(page.locator("#edit-step input[type=range]")).to_be_enabled()
            page.screenshot(path=str(ARTIFACTS / "browser_edit.png"), full_page=True)

            # then a region painted with the brush on the same picture
            canvas = page.locator("#edit-editor canvas").first
            canvas.scroll_into_view_if_needed()
            expect(canvas).to_be_visible()
            page.wait_for_timeout(500)
            box = canvas.bounding_box()
            x0, y0 = box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3
            page.mouse.move(x0, y0)
            page.mouse.down()
            for i in range(1, 11):  # a stroke across the upper middle
                page.mouse.move(x0 + box["width"] * 0.04 * i, y0, steps=2)
            page.mouse.up()
            page.get_by_label("brush", exact=True).check()
            page.get_by_role("button", name="Regenerate the region").click()
            expect(status).not_to_contain_text("128 kept", timeout=TIMEOUT_MS)
            expect(status).to_contain_text("Done", timeout=TIMEOUT_MS)
            note = page.locator("#edit-source-note").inner_text()
            painted = int(note.split(" of 256 cells")[0].split("·")[-1])
            assert 0 < painted < 128, note
            page.screenshot(path=str(ARTIFACTS / "browser_edit_brush.png"), full_page=True)
        finally:
            context.close()


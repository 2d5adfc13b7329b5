"""Issue 14, the web page at phone and desktop width (headless Chromium, screenshots), the
loading spinner and no stale list under a new listener's name."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from serving_helpers import planted_frames
from test_serving_web import _png_pixels, _serve, browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PARAMS = {"factors": 8, "iterations": 6, "random_state": 0}


@pytest.fixture(scope="module")
def served(browser, tmp_path_factory):  # noqa: F811
    server, pg = _serve(browser, tmp_path_factory.mktemp("web-layout"), planted_frames(), "als",
                        PARAMS)  # fmt: skip
    yield server, pg
    pg.close()
    server.__exit__(None, None, None)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone-390", "desktop-1280"])
def test_page_fits_phone_and_desktop_width(served, browser, viewport, tmp_path):  # noqa: F811
    server, _ = served
    pg = browser.new_page(viewport=viewport)
    pg.goto(server.url + "/")
    pg.wait_for_selector("body[data-ready=true]", timeout=20_000)
    pg.wait_for_selector("#recs li")
    width = viewport["width"]
    # nothing wider than the screen: no horizontal scrolling, every list item fully visible
    assert pg.evaluate("document.documentElement.scrollWidth") <= width
    boxes = pg.locator("#recs li").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    assert boxes and all(0 <= left and right <= width for left, right in boxes)
    knobs = pg.locator("#depth").bounding_box()
    recs = pg.locator("#recs").bounding_box()
    if width < 700:  # one column: the list under the knobs, using the full width
        assert recs["y"] >= knobs["y"] + knobs["height"]
        assert recs["width"] >= width - 40
        assert recs["y"] < pg.locator("#plot").bounding_box()["y"]  # and before the plot
    else:  # two columns: the list beside the controls
        assert recs["x"] >= knobs["x"] + knobs["width"]
    shot = tmp_path / f"page-{width}.png"
    pg.screenshot(path=str(shot), full_page=True)
    pixels = _png_pixels(shot.read_bytes())
    assert pixels.shape[1] == width and pixels.std() > 0.05  # a rendered page, not blank
    pg.close()


def test_spinner_while_loading_and_no_stale_list_under_a_new_name(served):
    _, pg = served
    pg.wait_for_selector("#recs li")
    held = []
    pattern = "**/users/u31/recommendations*"
    pg.route(pattern, lambda route: held.append(route))
    pg.select_option("#user-select", "u31")
    pg.wait_for_function("() => !document.querySelector('#spinner').hidden")
    # while u31's list loads: the previous listener's items and name are gone
    assert pg.locator("#recs li").count() == 0
    assert pg.locator("#recs-meta").inner_text() == "loading..."
    assert pg.locator("#user-select").input_value() == "u31"
    for _ in range(100):
        if held:
            break
        pg.wait_for_timeout(50)
    held[0].fulfill(status=500, content_type="application/json", body='{"error": "boom"}')
    pg.wait_for_function("() => document.querySelector('#spinner').hidden")
    assert pg.locator("#recs li").count() == 0  # a failed load leaves no older list
    assert "boom" in pg.locator("#error").inner_text()
    pg.unroute(pattern)
    pg.select_option("#user-select", "u32")
    pg.wait_for_function(
        "() => document.querySelector('#recs-meta').textContent.includes('model')"
        " && document.querySelectorAll('#recs li').length === 12"
    )
    assert "u32" in pg.locator("#recs-meta").inner_text()
    assert pg.locator("#spinner").is_hidden()

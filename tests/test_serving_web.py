"""The web page end to end in headless Chromium (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import io
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")

from serving_helpers import LiveServer, block_of, planted_frames, two_taste_frames

from deepcuts.serving.app import create_app
from deepcuts.serving.service import RecommenderService
from deepcuts.serving.store import Store, default_url

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1200, "height": 800}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing (pip install playwright)"
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _serve(browser, tmp, frames, model, params):
    store = Store(default_url(tmp))
    store.import_play_counts(*frames)
    svc = RecommenderService(store, tmp, model=model, model_params=params, seed=False)
    svc.start()
    server = LiveServer(create_app(svc)).__enter__()
    pg = browser.new_page(viewport=VIEWPORT)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.goto(server.url + "/")
    pg.wait_for_selector("body[data-ready=true]", timeout=20_000)
    pg.errors = errors
    return server, pg


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    params = {"factors": 8, "iterations": 8, "regularization": 0.05, "reg_scaling": "none",
              "random_state": 0}  # fmt: skip
    server, pg = _serve(browser, tmp_path_factory.mktemp("web"), planted_frames(), "als", params)
    yield pg
    pg.close()
    server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def persona_page(browser, tmp_path_factory):
    params = {"factors": 8, "iterations": 15, "reg_scaling": "none", "regularization": 0.1,
              "random_state": 0}  # fmt: skip
    tmp = tmp_path_factory.mktemp("web-persona")
    server, pg = _serve(browser, tmp, two_taste_frames(), "persona", params)
    yield pg
    pg.close()
    server.__exit__(None, None, None)


def _png_pixels(png: bytes) -> np.ndarray:
    import matplotlib.image as mpimg

    return mpimg.imread(io.BytesIO(png), format="png")


def _show(page, user: str):
    """Put the module's page on ``user``'s neutral list (depth 0), whatever state an earlier
    test left it in, and return it."""
    if float(page.locator("#depth").input_value()) != 0:
        with page.expect_response(lambda r: "/recommendations" in r.url and "depth" not in r.url):
            page.locator("#depth").fill("0")
    if page.locator("#user-select").input_value() != user:
        page.select_option("#user-select", user)
    page.wait_for_function(f"document.querySelector('#recs-meta').textContent.includes({user!r})")
    return page


def _names(page) -> list[str]:
    return page.locator("#recs li .name").all_inner_texts()


def test_page_shows_a_listener_with_personas_and_recommendations(page):
    assert page.locator("#user-select option").count() == 60
    assert page.locator("#user-select").input_value() == "u0"
    assert page.locator("#recs li").count() == 12
    assert page.locator("#persona-tabs [role=tab]").count() == 1  # ALS: a single persona
    panel = page.locator("#persona-panel").inner_text()
    assert "genre0" in panel and "Artist" in panel
    assert "60 listeners x 30 artists" in page.locator("#model-info").inner_text()
    # the plot: the long-tail curve and one dot per recommendation
    assert page.locator("#plot svg path.curve").count() == 1
    assert page.locator("#plot svg circle.rec").count() == 12
    assert not page.errors


def test_choosing_a_listener_and_moving_the_depth_slider(page):
    page.select_option("#user-select", "u25")
    page.wait_for_function("document.querySelector('#recs-meta').textContent.includes('u25')")
    first = page.locator("#recs li").first.get_attribute("data-artist")
    assert block_of(first) == 1
    before = page.locator("#recs li").evaluate_all(
        "els => els.map(e => e.getAttribute('data-artist'))"
    )
    with page.expect_response(lambda r: "depth=1.00" in r.url and r.status == 200):
        page.locator("#depth").fill("1")
    page.wait_for_function(
        "prev => JSON.stringify([...document.querySelectorAll('#recs li')]"
        ".map(e => e.getAttribute('data-artist'))) !== prev",
        arg=str(before).replace("'", '"'),
    )
    assert page.locator("#depth-value").inner_text() == "1.00"
    listeners = [int(t.split()[0]) for t in page.locator("#recs li .small").all_inner_texts()]
    # deep cuts first: the list's head is less popular than the neutral list's head
    assert np.mean(listeners[:5]) < 18
    with page.expect_response(lambda r: "/recommendations" in r.url and "depth" not in r.url):
        page.locator("#depth").fill("0")


def test_why_this_explains_a_recommendation(page):
    item = _show(page, "u25").locator("#recs li").first
    item.locator("button.why").click()
    because = item.locator(".because")
    because.wait_for(state="visible")
    page.wait_for_function(
        "el => el.textContent.startsWith('Because you played')", arg=because.element_handle()
    )
    text = because.inner_text()
    played = re.findall(r"Artist (\d+)", text.split("Evidence:")[0])
    assert played and all(int(a) // 10 == 1 for a in played)  # u25's own block
    # "why this deep cut" (issue 11): the listeners and the taste evidence behind it
    assert re.search(r"Evidence: \d+ listeners?", text), text
    assert re.search(r"match yours \d+% \(taste evidence\)", text), text


def test_uploading_a_history_folds_in_a_new_listener(page, tmp_path):
    lines = [
        f"user_000001\t2009-05-0{d}T10:00:00Z\t\tArtist {a}\t\tsong"
        for d in range(1, 4)
        for a in (21, 22, 23, 24)
    ]
    f = tmp_path / "history.tsv"
    f.write_text("\n".join(lines) + "\n")
    page.locator("#upload-box summary").click()
    page.fill("#upload-user", "browser-fan")
    page.select_option("#upload-format", "lastfm1k")
    page.set_input_files("#upload-file", str(f))
    page.click("#upload-button")
    page.wait_for_function(
        "document.querySelector('#recs-meta').textContent.includes('browser-fan')"
    )
    assert "stored 12 listens" in page.locator("#upload-status").inner_text()
    assert page.locator("#user-select").input_value() == "browser-fan"
    artists = page.locator("#recs li").evaluate_all(
        "els => els.map(e => e.getAttribute('data-artist'))"
    )
    assert block_of(artists[0]) == 2
    assert "folded in" in page.locator("#recs-meta").inner_text()
    assert not page.errors


def test_screenshot_is_a_full_non_blank_page(page):
    png = page.screenshot()
    img = _png_pixels(png)
    assert img.shape[:2] == (VIEWPORT["height"], VIEWPORT["width"])
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a blank page
    assert len(np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50
    plot = _png_pixels(page.locator("#plot svg").screenshot())
    accent = np.array([0xB4, 0x43, 0x2A]) / 255  # the recommendation dots
    close = np.abs(plot[..., :3] - accent).max(axis=-1) < 0.12
    assert close.sum() > 30
    tabs = page.locator("#persona-tabs")
    assert tabs.is_visible() and tabs.bounding_box()["height"] > 10


def test_personas_are_tabs(persona_page):
    pg = persona_page
    pg.fill("#user-id", "u5")  # tastes: blocks 0 and 1
    pg.press("#user-id", "Enter")
    pg.wait_for_function("document.querySelectorAll('#persona-tabs [role=tab]').length === 3")
    tabs = pg.locator("#persona-tabs [role=tab]")
    assert tabs.nth(0).inner_text() == "All personas"
    assert tabs.nth(0).get_attribute("aria-selected") == "true"
    assert pg.locator("#persona-panel .persona").count() == 2
    blocks = set()
    for k in (1, 2):
        with pg.expect_response(lambda r, k=k: f"persona={k - 1}" in r.url and r.status == 200):
            tabs.nth(k).click()
        assert tabs.nth(k).get_attribute("aria-selected") == "true"
        assert pg.locator("#persona-panel .persona").count() == 1
        pg.wait_for_function(
            "p => [...document.querySelectorAll('#recs li .small')].every("
            "e => e.textContent.includes('persona ' + p))",
            arg=k,
        )
        first = pg.locator("#recs li").first.get_attribute("data-artist")
        blocks.add(block_of(first))
    assert blocks == {0, 1}  # each tab recommends from its own taste
    assert not pg.errors


def test_token_field_sends_the_token_with_uploads_only(browser, tmp_path):
    """With ``--token`` the page's token field (kept in sessionStorage, not localStorage) is
    sent as the Authorization header with the history upload, never with reads (issue 13)."""
    from deepcuts.serving._security import Security

    token = "page-token-0123456789abcdef"
    tmp = tmp_path / "srv"
    tmp.mkdir()
    store = Store(default_url(tmp))
    store.import_play_counts(*planted_frames())
    params = {"factors": 8, "iterations": 8, "regularization": 0.05, "random_state": 0}
    svc = RecommenderService(store, tmp, model="als", model_params=params, seed=False)
    svc.start()
    with LiveServer(create_app(svc, security=Security(token=token))) as server:
        pg = browser.new_page(viewport=VIEWPORT)
        sent: list[tuple[str, str, str | None]] = []
        pg.on(
            "request",
            lambda r: sent.append((r.method, r.url, r.headers.get("authorization"))),
        )
        pg.goto(server.url + "/")
        pg.wait_for_selector("body[data-ready=true]", timeout=20_000)
        f = tmp_path / "history.tsv"
        f.write_text(
            "".join(
                f"u\t2009-05-0{d}T10:00:00Z\t\tArtist {a}\t\ts\n" for d in (1, 2) for a in (3, 4)
            )
        )
        pg.locator("#upload-box summary").click()
        pg.select_option("#upload-format", "lastfm1k")
        pg.set_input_files("#upload-file", str(f))

        def upload(user):
            pg.fill("#upload-user", user)
            pg.evaluate("document.querySelector('#upload-status').textContent = ''")
            pg.click("#upload-button")
            pg.wait_for_function(
                "!['', 'uploading...'].includes(document.querySelector('#upload-status')"
                ".textContent)"
            )
            return pg.locator("#upload-status").inner_text()

        assert "token" in upload("no-token")  # 401, its message shown
        pg.fill("#api-token", "wrong")
        assert "token" in upload("wrong-token")
        pg.fill("#api-token", token)
        assert "stored 4 listens" in upload("with-token")
        assert pg.evaluate("sessionStorage.getItem('deepcuts-api-token')") == token
        assert pg.evaluate("localStorage.length") == 0
        assert not svc.store.has_user("no-token") and svc.store.has_user("with-token")
        posts = [(u, a) for m, u, a in sent if m == "POST"]
        assert [a for _, a in posts] == [None, "Bearer wrong", f"Bearer {token}"]
        assert all(a is None for m, _, a in sent if m == "GET"), "the token went with a read"
        pg.reload()  # the same tab keeps it
        pg.wait_for_selector("body[data-ready=true]", timeout=20_000)
        assert pg.input_value("#api-token") == token
        pg.close()

"""The storefront page in a real browser: Debian's Chromium, headless, driven by Playwright, against
a real `uvicorn` server of the app (its own port and temporary data directory).

The static part (the page, its modules, model-viewer from the npm package) always runs when the
browser is installed; the live part (a try-on session streamed over WebRTC) needs the try-on API.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
# The fixtures `server`, `browser` (skips without playwright or chromium) and `page` are in conftest.py.


def _has_tryon_api(server) -> bool:
    import httpx

    paths = httpx.get(server + "/openapi.json", timeout=5).json().get("paths", {})
    return "/api/v1/tryon" in paths and "/api/v1/tryon/{session_id}/offer" in {p.replace("{id}", "{session_id}") for p in paths}


# -- the page and what serves it ----------------------------------------------------------------

def test_static_routes(server):
    import httpx

    r = httpx.get(server + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in r.text
    for name in ("app.js", "api.js", "tryon.js", "controls.js", "frame_stamp.js", "ar.js", "room.js"):
        r = httpx.get(f"{server}/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript"), name
    assert httpx.get(server + "/style.css").headers["content-type"].startswith("text/css")
    r = httpx.get(server + "/vendor/model-viewer.min.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 100_000  # the bundled module (three.js inside), from .node/, not a CDN
    for missing in ("/nope.js", "/vendor/other.js", "/..%2Fpyproject.toml", "/web_client/app.js"):
        assert httpx.get(server + missing).status_code == 404, missing
    assert httpx.get(server + "/openapi.json").status_code == 200  # the API is not shadowed


def test_page_loads_and_lists_garments(page):
    garments = page.locator("#garments .garment")
    assert garments.count() == 5
    names = [garments.nth(i).get_attribute("data-garment") for i in range(5)]
    assert names == ["tshirt", "longsleeve", "dress", "skirt", "trousers"]
    assert page.locator("#garments .garment[aria-checked='true']").count() == 1
    assert page.locator("#sizes .chip").all_inner_texts() == ["XS", "S", "M", "L", "XL"]
    assert page.locator("#lights .chip").count() == 4
    assert page.locator("#colourways .chip").count() >= 3
    # Choosing is a radio group: one checked at a time.
    garments.nth(2).click()
    assert garments.nth(2).get_attribute("aria-checked") == "true"
    # The fit map's legend is the server's strain scale, shown with the fit map.
    assert page.locator("#fitmap-legend").is_hidden()
    page.locator("#fitmap").check()
    assert page.locator("#fitmap-legend").is_visible()
    assert page.locator("#fitmap-ticks span").all_inner_texts() == ["≤90", "100", "105", "110", "115", "120+"]
    bar = page.evaluate("getComputedStyle(document.getElementById('fitmap-bar')).backgroundImage")
    assert bar.startswith("linear-gradient") and "rgb(0, 190, 230)" in bar and "rgb(220, 30, 30)" in bar
    assert garments.nth(0).get_attribute("aria-checked") == "false"
    # model-viewer's module loaded from /vendor and defined its element; AR modes as asked.
    page.wait_for_function("() => !!customElements.get('model-viewer')", timeout=15_000)
    mv = page.locator("model-viewer#look-viewer")
    assert mv.get_attribute("ar-modes") == "webxr scene-viewer quick-look"
    assert mv.get_attribute("ar") is not None
    # No headset here: the immersive-ar entry stays hidden.
    assert page.locator("#xr-enter").is_hidden()
    assert page.console_errors == []


def test_page_is_responsive(browser, server):
    """On a phone-sized screen the video comes first and nothing is wider than the screen."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    pg = context.new_page()
    pg.goto(server + "/")
    pg.wait_for_selector("body[data-ready='true']")
    scroll_width = pg.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390
    stage = pg.locator("#stage").bounding_box()
    panel = pg.locator(".panel").bounding_box()
    assert stage["y"] < panel["y"]
    context.close()


def test_stamp_decoder_matches_the_server(page):
    """The page's barcode reader (frame_stamp.js) reads what frame_stamp.stamp_counter writes."""
    from streaming import frame_stamp
    from PIL import Image

    for height, counter in ((360, 0), (360, 0xA5F00F5A), (720, 123456), (1080, 2**32 - 1)):
        image = np.full((height, height * 16 // 9, 3), 200, np.uint8)
        frame_stamp.stamp_counter(image, counter)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        got = page.evaluate("""async ([url, height]) => {
            const { decodeStamp } = await import('/frame_stamp.js');
            const img = new Image(); img.src = url; await img.decode();
            const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            return decodeStamp(ctx.getImageData(0, 0, c.width, c.height));
        }""", [url, height])
        assert got == counter, (height, counter, got)


# -- a live try-on --------------------------------------------------------------------------------

# A small grey picture of the video (the stamp corner blanked): to see that frames change.
SNAPSHOT = """() => {
  const v = document.getElementById('video');
  if (!v.videoWidth) return null;
  const w = 96, h = 54, c = document.createElement('canvas'); c.width = w; c.height = h;
  const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0, w, h);
  const d = ctx.getImageData(0, 0, w, h).data, out = [];
  for (let i = 0; i < w * h; i++) out.push((d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / 3);
  for (let y = 0; y < 2; y++) for (let x = 0; x < 40; x++) out[y * w + x] = 0;
  return out;
}"""


def _snapshot(page) -> np.ndarray:
    return np.asarray(page.evaluate(SNAPSHOT), np.float32).reshape(54, 96)


def _wait_changed(page, before: np.ndarray, timeout: float = 15.0, threshold: float = 1.0) -> float:
    deadline = time.monotonic() + timeout
    diff = 0.0
    while time.monotonic() < deadline:
        diff = float(np.abs(_snapshot(page) - before).mean())
        if diff > threshold:
            return diff
        page.wait_for_timeout(100)
    return diff


def _pinch_out(page, x: float, y: float) -> None:
    """Two fingers on the stage at (x +- 20, y) moving apart to +- 80 px: real touch input through
    the DevTools protocol, which the browser turns into touch pointer events."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 2})
    for d in range(20, 81, 6):
        points = [{"x": x - d, "y": y, "id": 1}, {"x": x + d, "y": y, "id": 2}]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart" if d == 20 else "touchMove", "touchPoints": points})
        page.wait_for_timeout(15)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def _sent(page) -> list[dict]:
    """The control messages sent since the last call."""
    return page.evaluate("window.__sent.splice(0)")


def _changes(page, act, kind: str, check) -> None:
    """Does `act()`, then waits for the page to send a `kind` control message that passes `check`
    and for the picture to change from what it was before."""
    before = _snapshot(page)
    act()
    deadline, seen = time.monotonic() + 5.0, []
    while time.monotonic() < deadline and not any(m["type"] == kind and check(m) for m in seen):
        page.wait_for_timeout(50)
        seen += _sent(page)
    assert any(m["type"] == kind and check(m) for m in seen), (kind, seen)
    assert _wait_changed(page, before) > 0.5, f"a {kind} message did not change the picture"


@pytest.fixture
def live(page, server):
    if not _has_tryon_api(server):
        pytest.skip("the try-on API (/api/v1/tryon) is not there yet")
    page.evaluate("""() => {
      window.__statuses = [];
      window.__sent = [];  // the control messages the page sends, parsed
      const send = RTCDataChannel.prototype.send;
      RTCDataChannel.prototype.send = function (data) {
        if (this.label === 'control') window.__sent.push(JSON.parse(data));
        return send.call(this, data);
      };
      const orig = window.fetch;
      window.fetch = async (...a) => {
        const r = await orig(...a);
        if (/\\/api\\/v1\\/tryon\\/[^/]+$/.test(String(a[0]))) r.clone().json().then((j) => window.__statuses.push(j.status), () => {});
        return r;
      };
    }""")
    return page


def test_live_tryon(live):
    page = live
    page.locator("#garments .garment[data-garment='tshirt']").click()
    page.locator("#sizes .chip", has_text="M").click()
    page.locator("#start").click()
    # Progress shows while it drapes.
    page.wait_for_selector("#progress-wrap:not([hidden])", timeout=10_000)
    # The video plays: currentTime advances and a frame drawn to a canvas is not blank.
    page.wait_for_function("() => document.getElementById('video').currentTime > 0.3", timeout=60_000)
    t0 = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_timeout(700)
    assert page.evaluate("document.getElementById('video').currentTime") > t0
    assert page.locator("#progress-wrap").is_hidden()
    assert {"queued", "draping"} & set(page.evaluate("window.__statuses"))
    snap = _snapshot(page)
    assert snap.std() > 5.0, "the video frame is blank"
    # The frame counter stamped by the server reads back from the video and moves on.
    n0 = page.evaluate("window.fitroom.clock.read()")
    page.wait_for_timeout(500)
    assert page.evaluate("window.fitroom.clock.read()") > n0
    # ... while the shopper does not see it: the video shows its frames from below the stamp's row.
    from streaming.frame_stamp import STAMP_CELL

    view_box = page.evaluate("getComputedStyle(document.getElementById('video')).objectViewBox")
    assert view_box == f"inset({STAMP_CELL}px 0px 0px)"  # style.css carries the number
    # Size advice shown.
    assert "size" in page.locator("#advice").inner_text().lower()

    # An orbit (mouse drag on the video) changes the picture.
    before = _snapshot(page)
    page.locator("#stage").scroll_into_view_if_needed()  # mouse events off the viewport go nowhere
    box = page.locator("#stage").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + 20 * i, y, steps=1)
        page.wait_for_timeout(20)
    page.mouse.up()
    assert _wait_changed(page, before) > 1.0, "an orbit did not change the picture"
    assert any(m["type"] == "orbit" and m["d_yaw"] > 0 for m in _sent(page))

    # The wheel zooms in, shift+drag pans, a two-finger pinch zooms, and each moves the picture.
    page.wait_for_timeout(600)  # let the orbit settle
    _sent(page)

    def shift_drag():
        page.keyboard.down("Shift")
        page.mouse.move(x, y)
        page.mouse.down()
        for i in range(1, 8):
            page.mouse.move(x + 15 * i, y + 5 * i, steps=1)
            page.wait_for_timeout(20)
        page.mouse.up()
        page.keyboard.up("Shift")

    page.mouse.move(x, y)  # the wheel scrolls what is under the mouse
    _changes(page, lambda: page.mouse.wheel(0, -300), "zoom", lambda m: m["factor"] > 1.2)
    _changes(page, shift_drag, "pan", lambda m: m["dx"] > 0.05 and m["dy"] > 0.0)
    _changes(page, lambda: _pinch_out(page, x, y), "zoom", lambda m: m["factor"] > 1.5)
    # Colourway, light and the fit map: each reaches the server and changes the picture.
    _changes(page, lambda: page.locator("#colourways .chip >> nth=2").click(), "colourway", lambda m: True)
    _changes(page, lambda: page.locator("#lights .chip >> nth=2").click(), "light", lambda m: m["name"] == "evening")
    _changes(page, lambda: page.locator("#fitmap").check(), "fitmap", lambda m: m["on"] is True)
    assert page.locator("#fitmap-legend").is_visible()

    # model-viewer points at the session's look.glb and look.usdz.
    mv = page.locator("model-viewer#look-viewer")
    assert "/look.glb" in mv.get_attribute("src")
    assert "/look.usdz" in mv.get_attribute("ios-src")
    # ... and loads the GLB (three.js inside model-viewer parses it; WebGL is software here).
    page.wait_for_function("() => document.getElementById('look-viewer').loaded === true", timeout=30_000)

    # A size change re-drapes: the status goes through draping and the picture changes.
    page.evaluate("window.__statuses = []")
    page.wait_for_timeout(600)  # let the orbit settle
    before = _snapshot(page)
    drapes = page.evaluate("window.fitroom.state.session.drapes")
    page.locator("#sizes .chip", has_text="XL").click()
    page.wait_for_function(f"() => window.fitroom.state.session.drapes > {drapes} && "
                           "window.fitroom.state.session.status === 'ready'", timeout=60_000)
    assert "draping" in page.evaluate("window.__statuses")
    assert page.evaluate("window.fitroom.state.session.size") == "XL"
    assert _wait_changed(page, before) > 0.3, "a new size did not change the picture"
    assert page.console_errors == []


# -- an avatar from the shopper's photos -----------------------------------------------------------

PHOTOS = REPO.parent / "shared" / "data" / "photos"


@pytest.fixture(scope="module")
def shopper_photo(tmp_path_factory, body_model_cpu):
    """A JPEG of a synthetic 176 cm man, full length from the front (the browser uploads it)."""
    from PIL import Image

    from fitroom.samples import natural_standing_pose, render_photos, sample_body

    rng = np.random.default_rng(21)
    shape = sample_body(body_model_cpu, rng, sex="male", height_cm=176.0)
    rgb, _ = render_photos(body_model_cpu, shape, natural_standing_pose(body_model_cpu, rng=rng), views=("front",))["front"]
    path = tmp_path_factory.mktemp("photo") / "me.jpg"
    Image.fromarray(rgb).save(path, quality=90)
    return path


def test_try_on_with_an_avatar_from_a_photo(live, shopper_photo):
    page = live
    page.set_input_files("#photo-front", str(shopper_photo))
    page.fill("#photo-height", "176")
    page.locator("#start").click()
    page.wait_for_selector("body[data-avatar='fitting'], body[data-avatar='ready']", timeout=20_000)
    page.wait_for_function("() => document.body.dataset.avatar === 'ready'", timeout=30_000)
    page.wait_for_function("() => document.getElementById('video').currentTime > 0.3", timeout=60_000)
    session = page.evaluate("window.fitroom.state.session")
    assert session["status"] == "ready" and set(session["avatar"]) == {"id"}, session
    assert _snapshot(page).std() > 5.0
    assert page.console_errors == []


@pytest.mark.skipif(not PHOTOS.is_dir(), reason="../shared/data/photos is not beside the checkout")
def test_a_refused_photo_says_why(live):
    page = live
    page.set_input_files("#photo-front", str(PHOTOS / "COCO_val2014_000000000328.jpg"))  # three people
    page.fill("#photo-height", "175")
    page.locator("#start").click()
    page.wait_for_function("() => document.body.dataset.avatar === 'failed'", timeout=30_000)
    page.wait_for_selector("#message.error", timeout=5_000)
    assert "people" in page.locator("#message").inner_text()
    assert page.locator("#progress-wrap").is_hidden()
    assert page.evaluate("window.fitroom.state.session") is None

"""Glass-to-glass latency of the try-on video, measured in a real browser (issue 5).

A real server process of the app (`fitroom serve`, its own port, a temporary data directory sharing
the converted body model) and Debian's Chromium, headless, driven by Playwright, on one machine
(loopback). The storefront page starts a try-on, the video plays, and the page's `FrameClock`
(web_client/frame_stamp.js) reads the frame counter that the server stamps into every frame (a
barcode in the top-left corner, streaming/video_track.py) on each frame the browser shows
(`requestVideoFrameCallback`, `expectedDisplayTime`). The server sends when it stamped each counter
(`stamps` in the control channel's stats, epoch ms); shown minus stamped is one sample. The
camera orbits slowly all along so that frames are rendered, not reused.

What the figure covers: stamping (after the render) -> encode -> packetise -> loopback -> jitter
buffer -> decode -> composite. Not the render itself (the server stamps after it; its time is in
the stats' `render_ms`). Headless Chromium composites without a display, so "glass" is its
compositor's expected display time. Target: p50 <= 200 ms on loopback.

    .venv/bin/python bench/stream_latency.py [--seconds 20] [--width 1280 --height 720] [--out F]

Prints JSON and writes bench/results/stream_latency_cpu.json (or `--out`). `measure_latency(url, ...)`
measures against a server that is already running (bench/stream.py can call it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.local_server import free_port, server_data_dir, start_server_process, stop_process, wait_http  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # aiortc cannot resolve mDNS host candidates
    "--autoplay-policy=no-user-gesture-required",
]


def measure_latency(url: str, seconds: float = 20.0, garment: str = "tshirt", size: str = "M",
                    orbit: bool = True) -> dict:
    """Opens the storefront at `url` in headless Chromium, starts a try-on and collects latency
    samples for `seconds` once the video plays. Returns p50/p95/min/max (ms), the sample and frame
    counts, and the browser's decoded fps."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url.rstrip("/") + "/")
            page.wait_for_selector("body[data-ready='true']", timeout=30_000)
            page.locator(f"#garments .garment[data-garment='{garment}']").click()
            page.locator("#sizes .chip", has_text=size).first.click()
            t0 = time.monotonic()
            page.locator("#start").click()
            page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=120_000)
            ready_s = time.monotonic() - t0
            page.wait_for_timeout(1000)  # past the first keyframe and the jitter buffer's start
            page.evaluate("window.fitroom.clock.reset()")
            frames0 = page.evaluate("document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames")
            end = time.monotonic() + seconds
            box = page.locator("#stage").bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            while time.monotonic() < end:
                if orbit:  # a slow drag: every frame is a new render
                    page.mouse.move(x, y)
                    page.mouse.down()
                    for i in range(10):
                        page.mouse.move(x + 6 * (i + 1), y)
                        page.wait_for_timeout(50)
                    page.mouse.up()
                else:
                    page.wait_for_timeout(500)
            page.wait_for_timeout(1500)  # the last stats message brings the last stamps
            samples = page.evaluate("window.fitroom.clock.samples")
            frames = page.evaluate("document.getElementById('video').getVideoPlaybackQuality().totalVideoFrames") - frames0
            size_px = page.evaluate("[document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
            server = page.evaluate("window.fitroom.state.serverStats || {}")
        finally:
            browser.close()
    import numpy as np

    s = np.asarray(samples, float)
    pct = (lambda q: round(float(np.percentile(s, q)), 1)) if len(s) else (lambda q: None)
    return {"samples": int(len(s)), "p50_ms": pct(50), "p95_ms": pct(95),
            "min_ms": round(float(s.min()), 1) if len(s) else None, "max_ms": round(float(s.max()), 1) if len(s) else None,
            "frames_shown": int(frames), "shown_fps": round(frames / seconds, 1), "video": size_px,
            "server_fps": server.get("fps"), "server_render_ms": server.get("render_ms"),
            "server_encode_ms": server.get("encode_ms"), "codec": server.get("codec"),
            "seconds": seconds, "time_to_video_s": round(ready_s, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=20)
    ap.add_argument("--no-orbit", action="store_true", help="a still camera (frames reused, not rendered)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "stream_latency_cpu.json"),
                    help="where the JSON goes (bench/stream.py merges the default one into its result)")
    args = ap.parse_args()
    from drape_quality import _cpu_name  # bench/ is on the path when this runs as a script

    with tempfile.TemporaryDirectory() as tmp:
        port, log = free_port(), Path(tmp) / "server.log"
        env = {**os.environ, "FITROOM_DATA_DIR": str(server_data_dir(Path(tmp))), "FITROOM_DEVICE": "cpu",
               "FITROOM_STREAM_WIDTH": str(args.width), "FITROOM_STREAM_HEIGHT": str(args.height),
               "FITROOM_STREAM_FPS": str(args.fps)}
        proc = start_server_process(port, env, log)
        try:
            url = f"http://127.0.0.1:{port}"
            try:
                wait_http(url, proc, log, path="/")
            except RuntimeError as e:
                raise SystemExit(str(e)) from None
            result = measure_latency(url, args.seconds, orbit=not args.no_orbit)
        finally:
            stop_process(proc)
    out = {"benchmark": "glass-to-glass latency, loopback, headless Chromium", "cpu": _cpu_name(),
           "stream": f"{args.width}x{args.height}@{args.fps}", "orbiting": not args.no_orbit,
           "target_p50_ms": 200, **result}
    print(json.dumps(out, indent=1))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()

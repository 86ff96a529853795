"""The live page in a real headless browser (Debian's chromium through playwright): it plays, speaks, stops."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from test_serve_api import start

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,  # drives a browser against a live server
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")]

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

MOUTH = """([x0, y0, x1, y1]) => {  // how dark the darkest 5 % of the mouth box is (an open mouth), frame shown now
  const v = document.getElementById('video'), c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const d = g.getImageData(x0, y0, x1 - x0, y1 - y0).data;
  const y = []; for (let i = 0; i < d.length; i += 4) y.push((d[i] + d[i + 1] + d[i + 2]) / 3);
  y.sort((a, b) => a - b);
  return 255 - y[Math.floor(y.length * 0.05)];
}"""


def test_page_plays_speaks_and_stops(viseme_model):
    from playwright.sync_api import sync_playwright

    from talkinghead.engines.modeldir import load_engine

    subject = load_engine(viseme_model, "cpu").subject
    lo, hi = subject.meta["split"]["train"]
    box = [int(v) for v in np.median(subject.tracks["lip_box"][lo:hi], 0)]
    proc, url = start(viseme_model)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function("window.th && window.th.state === 'idle'", timeout=30000)
            page.wait_for_function("document.getElementById('video').currentTime > 1", timeout=30000)
            size = page.evaluate("[document.getElementById('video').videoWidth, "
                                 "document.getElementById('video').videoHeight]")
            assert size == [subject.size, subject.size]

            def mouth_series(seconds: float) -> np.ndarray:
                out = []
                for _ in range(int(seconds * 12)):
                    out.append(page.evaluate(MOUTH, box))
                    page.wait_for_timeout(80)
                return np.array(out)

            idle = mouth_series(1.5)
            page.fill("#text", "Papa. Ah. Bob. Ah. Papa. Ah. Bob. Ah.")
            page.click("#send")
            page.wait_for_function("window.th.state === 'speaking'", timeout=15000)
            speaking = mouth_series(2.5)
            assert speaking.max() > idle.max() + 8, (idle.round(1), speaking.round(1))  # opens on the "ah"s
            page.click("#stop")
            page.wait_for_function("window.th.events.some(e => e.type === 'idle' && e.reason === 'interrupted')",
                                   timeout=3000)
            assert page.evaluate("window.th.state") == "idle"
            browser.close()
    finally:
        proc.kill()

"""``talkinghead serve`` as a real process: HTTP API, limits, WebRTC sessions, the agent WebSocket, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # serves a trained model

def start(model, *args) -> tuple[subprocess.Popen, str]:
    from talkinghead.serve.client import spawn_server

    return spawn_server(model, "--idle-seconds", "2", *args, capture=True, timeout_s=120)


def request(url: str, data: bytes | None = None, json_body=None) -> tuple[int, bytes, str]:
    headers = {}
    if json_body is not None:
        data, headers = json.dumps(json_body).encode(), {"Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


@pytest.fixture(scope="module")
def server(viseme_model):
    p, url = start(viseme_model, "--max-sessions", "1")
    yield {"url": url, "proc": p, "model": viseme_model}
    if p.poll() is None:
        p.kill()


def sessions(url: str) -> int:
    return json.loads(request(url + "/health")[1])["sessions"]


def test_health_and_page(server):
    code, body, kind = request(server["url"] + "/health")
    h = json.loads(body)
    assert code == 200 and h["status"] == "ok" and h["engine"] == "viseme" and h["max_sessions"] == 1
    code, page, kind = request(server["url"] + "/")
    assert code == 200 and kind.startswith("text/html") and b"RTCPeerConnection" in page


def test_say_returns_an_mp4_of_the_sentence(server, tmp_path):
    from talkinghead.io.video import probe

    code, body, kind = request(server["url"] + "/say", json_body={"text": "Hello there, my friend."})
    assert code == 200 and kind == "video/mp4"
    (tmp_path / "a.mp4").write_bytes(body)
    info = probe(tmp_path / "a.mp4")
    assert info.width == info.height and info.duration > 1.0 and info.has_audio


@pytest.mark.parametrize("body, status, words", [
    ({"text": "x" * 1001}, 400, "at most 1000"),
    ({"text": "   "}, 400, "empty"),
    ({"nope": 1}, 400, "text"),
])
def test_say_refuses_bad_text_with_one_clear_message(server, body, status, words):
    code, out, kind = request(server["url"] + "/say", json_body=body)
    assert code == status and words in json.loads(out)["error"]


def test_uploads_and_sessions(server, tmp_path):
    """A session: a bad upload and a good one, the session limit, the agent socket, disconnect frees it."""
    from talkinghead.audio.tts import synthesize
    from talkinghead.audio.wav import write_wav
    from talkinghead.serve.client import LiveClient

    url = server["url"]
    tts = synthesize("Papa bought a map.").resampled(16000)
    write_wav(tmp_path / "s.wav", tts.audio)

    async def scenario() -> None:
        async with LiveClient(url) as a:
            assert a.status == 200
            await a.wait_frames(10)
            assert len(a.video) >= 10 and len(a.audio) > 0
            async with LiveClient(url) as b:  # over --max-sessions 1
                assert b.status == 503 and "busy" in b.error and "--max-sessions" in b.error
            code, out, _ = request(f"{url}/session/{a.session}/audio", data=b"not audio at all" * 10)
            assert code == 400 and "not an audio file" in json.loads(out)["error"]
            code, out, _ = request(f"{url}/session/{a.session}/audio", data=(tmp_path / "s.wav").read_bytes())
            assert code == 200 and abs(json.loads(out)["seconds"] - tts.duration) < 0.05
            speaking = await a.wait_event("speaking")
            idle = await a.wait_event("idle", after=speaking["t"])
            assert idle["reason"] == "done" and idle["t"] - speaking["t"] == pytest.approx(tts.duration, abs=0.3)
            # the agent path: streamed PCM, then an interrupt stops it at once
            t0 = time.time()
            asyncio.ensure_future(a.send_pcm(np.tile(tts.audio, 4)))
            speaking = await a.wait_event("speaking", after=t0)
            await asyncio.sleep(0.5)
            sent = await a.send({"type": "interrupt"})
            idle = await a.wait_event("idle", after=speaking["t"])
            assert idle["reason"] == "interrupted" and idle["t"] - sent < 0.2
            await a.send({"type": "bogus"})
            await asyncio.sleep(0.3)
            assert any(e["type"] == "error" and "unknown message type" in e["message"] for e in a.events)
        for _ in range(50):  # closing the peer connection frees the session
            if sessions(url) == 0:
                break
            await asyncio.sleep(0.1)
        assert sessions(url) == 0

    asyncio.run(scenario())


def test_paths_from_clients_are_never_opened(server):
    code, _, _ = request(server["url"] + "/session/..%2F..%2Fetc%2Fpasswd/audio", data=b"x")
    assert code == 404
    code, _, _ = request(server["url"] + "/etc/passwd")
    assert code == 404


def test_ctrl_c_shuts_down_cleanly(viseme_model):
    p, url = start(viseme_model)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0 and "Traceback" not in err

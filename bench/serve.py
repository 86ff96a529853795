"""Live serving on this machine: latency, frame rate, A/V sync, two sessions, memory; or how many sessions it holds.

    python bench/serve.py MODEL [--seconds 60] [--json]
    python bench/serve.py MODEL --capacity 32 [--seconds 20] [--json]

Starts ``talkinghead serve MODEL`` on a free loopback port, connects scripted
WebRTC clients (``talkinghead.serve.client``, aiortc: what a browser does) and
ends with one JSON line:

* first_frame_ms: text sent → the first video frame of the answer arrives (median over answers; the
  answer's first frame is the one the server's ``speaking`` event names, client and server share a clock).
* fps: video frames received per second while answering for ``--seconds``; holds: frames the
  server had to repeat because the next one was not rendered in time (a stutter, sound paused with it).
* av_offset_ms: per answer, (arrival of its first sound − when that sound is due in the answer) −
  (arrival of its first frame − when that frame is due): how much later the sound reaches the client
  than the picture it belongs to; av_drift_ms: how far that wanders over the run (max − min).
* sessions_fps: the lower received frame rate of two sessions answering at once; sessions_holds: frames
  repeated in both together; sessions_new_fps: new pictures per second and session (fps − holds / 2 / s);
  sessions_first_frame_ms: text sent → first frame of the answer, median over both sessions' answers.
* rss_mb_start / rss_mb_one_session / rss_mb_end: the server's resident memory after connecting,
  after the ``--seconds`` of answers, and at the end (after two sessions, one closed).
* ``--capacity N``: 1, 2, 4, … up to N sessions answer at once for ``--seconds``; per count the lowest
  received frame rate of a session, the new pictures per second and session (repeats taken off), text →
  first frame; ``sessions_at_25fps`` is the largest count whose every session got ≥ 24 new pictures per
  second (the clients run in this one process: on a many-GPU server, check its CPU is not the limit).
* stream_first_motion_ms: speech streamed over the WebSocket in 20 ms real-time chunks (an agent's
  TTS, its leading silence cut so it starts with speech) → the first frame of the answer arrives
  (the frame that shows the first speech sound); stream_holds: pictures repeated while the three streamed
  answers (stream_frames frames) played.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

SENTENCE = "Hello, I am glad you came by today. What would you like to talk about?"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def answer_loop(client, seconds: float, text: str = SENTENCE) -> list[dict]:
    """Ask for ``text`` again and again for ``seconds``; per answer: send time, speaking / idle events."""
    out, end = [], time.time() + seconds
    while time.time() < end:
        sent = await client.send({"type": "text", "text": text})
        speaking = await client.wait_event("speaking", after=sent)
        idle = await client.wait_event("idle", after=speaking["t"], timeout=60)
        out.append({"sent": sent, "speaking": speaking["t"], "idle": idle["t"]})
        await asyncio.sleep(0.8)
    return out


def leading_silence(text: str, level: float = 0.01) -> float:
    """Seconds before the TTS audio of ``text`` first exceeds ``level`` RMS in a 20 ms frame (the client's test)."""
    from talkinghead.audio.tts import synthesize

    x = synthesize(text).resampled(16000).audio
    rms = np.sqrt(np.mean(x[: len(x) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
    return float(np.argmax(rms > level)) * 0.02


def health(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url + "/health").read())


def delivery(client, answers: list[dict], lead: float) -> dict:
    """Per answer: when its first frame and its first sound arrived, against when the server showed them."""
    first, offsets = [], []
    for ans in answers:
        ff = client.first_frame_after(ans["speaking"] - 0.005)
        snd = client.first_sound(ans["speaking"] - 0.005)
        if ff is not None:
            first.append(ff - ans["sent"])
        if ff is not None and snd is not None:
            offsets.append((snd - ans["speaking"] - lead) - (ff - ans["speaking"]))
    return {"first": first, "offsets": offsets}


async def run(model: str, url: str, seconds: float, pid: int) -> dict:
    from talkinghead.audio.tts import synthesize
    from talkinghead.serve.client import LiveClient

    res: dict = {}
    lead = leading_silence(SENTENCE)
    async with LiveClient(url) as a:
        await a.wait_frames(50)
        await asyncio.sleep(2)
        res["rss_mb_start"] = round(rss_mb(pid), 1)
        h0, t0 = health(url)["holds"], time.time()
        answers = await answer_loop(a, seconds)
        t1 = time.time()
        d = delivery(a, answers, lead)
        res.update(answers=len(answers), first_frame_ms=_ms(np.median(d["first"])), fps=round(a.fps(t0, t1), 2),
                   holds=health(url)["holds"] - h0, answer_s=round(t1 - t0, 1), av_offset_ms=_ms(np.median(d["offsets"])),
                   av_drift_ms=_ms(np.max(d["offsets"]) - np.min(d["offsets"])) if d["offsets"] else None)
        res["rss_mb_one_session"] = round(rss_mb(pid), 1)

        # the agent path: speech streamed in real time, leading silence cut so the speech starts at once
        tts = synthesize(SENTENCE).resampled(16000).audio
        speech = tts[int(np.argmax(np.abs(tts) > 0.02)):]
        stream, h0 = [], health(url)["holds"]
        for _ in range(3):
            task = asyncio.ensure_future(a.send_pcm(speech))
            await asyncio.sleep(0)
            t_send = time.time()
            speaking = await a.wait_event("speaking", after=t_send)
            await task
            await a.wait_event("idle", after=speaking["t"], timeout=60)
            ff = a.first_frame_after(speaking["t"] - 0.005)
            if ff is not None:
                stream.append(ff - t_send)
            await asyncio.sleep(1)
        res["stream_first_motion_ms"] = _ms(np.median(stream)) if stream else None
        res["stream_holds"] = health(url)["holds"] - h0  # pictures repeated while the streamed answers played
        res["stream_frames"] = int(round(3 * len(speech) / 16000 * health(url)["fps"]))  # those answers' frames

        # two sessions answering at once
        async with LiveClient(url) as b:
            await b.wait_frames(25)
            h0, t0 = health(url)["holds"], time.time()
            both = await asyncio.gather(answer_loop(a, min(seconds, 30)), answer_loop(b, min(seconds, 30)))
            t1 = time.time()
            first = [x for c, ans in zip((a, b), both) for x in delivery(c, ans, lead)["first"]]
            res["sessions_first_frame_ms"] = _ms(np.median(first)) if first else None
            res["sessions_fps"] = round(min(a.fps(t0, t1), b.fps(t0, t1)), 2)
            res["sessions_holds"] = health(url)["holds"] - h0
            # frames that were new pictures (not a repeated one while the renderer caught up), per session
            res["sessions_new_fps"] = round(res["sessions_fps"] - res["sessions_holds"] / 2 / (t1 - t0), 2)
        await asyncio.sleep(2)
        res["rss_mb_end"] = round(rss_mb(pid), 1)
    return res


async def capacity(url: str, most: int, seconds: float) -> dict:
    """Sessions answering at once, doubling until one falls under 24 new pictures per second."""
    lead, rows, held = leading_silence(SENTENCE), [], 0
    n = 1
    while n <= most:
        from talkinghead.serve.client import LiveClient

        clients = [LiveClient(url) for _ in range(n)]
        for c in clients:
            await c.__aenter__()
        try:
            for c in clients:
                await c.wait_frames(25)
            h0, t0 = health(url)["holds"], time.time()
            answers = await asyncio.gather(*(answer_loop(c, seconds) for c in clients))
            t1 = time.time()
            fps = min(c.fps(t0, t1) for c in clients)
            new = fps - (health(url)["holds"] - h0) / n / (t1 - t0)
            first = [x for c, a in zip(clients, answers) for x in delivery(c, a, lead)["first"]]
            rows.append({"sessions": n, "fps": round(fps, 2), "new_fps": round(new, 2),
                         "first_frame_ms": _ms(np.median(first)) if first else None})
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)
        await asyncio.sleep(2)
        if new < 24:
            break
        held = n
        n *= 2
    return {"capacity": rows, "sessions_at_25fps": held}


def _ms(x) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x) * 1000, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--json", action="store_true", help="only the JSON line")
    ap.add_argument("--capacity", type=int, default=0, metavar="N", help="count the sessions it holds, up to N")
    a = ap.parse_args()
    from talkinghead.serve.client import spawn_server

    server, url = spawn_server(a.model, "--max-sessions", str(max(2, a.capacity)))
    try:
        res = asyncio.run(capacity(url, a.capacity, a.seconds) if a.capacity else run(a.model, url, a.seconds, server.pid))
    finally:
        server.terminate()
        server.wait(30)
    if not a.json:
        for k, v in res.items():
            print(f"{k:>24}: {v}", file=sys.stderr)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

"""A scripted live client (aiortc): what the benchmark and the tests use to watch a ``talkinghead serve``.

``LiveClient`` connects like the page does (WebRTC offer, then the session's
WebSocket) and keeps, for every received video frame, its arrival time (no
pixels: the machine's two cores also serve), for every 20 ms audio frame its
arrival time and RMS, and the server's events. Client and server on one
machine share a clock, so an event's time (when the server shows a frame)
and an arrival time compare directly.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_server(model, *args: str, capture: bool = False, timeout_s: float = 300) -> tuple[subprocess.Popen, str]:
    """``talkinghead serve MODEL ARGS`` on a free loopback port, once ``/health`` answers: (process, url).

    ``capture``: its stdout / stderr are pipes (text) instead of this process's own. Raises RuntimeError
    (with the server's stderr when captured) if it exits or does not come up in ``timeout_s``."""
    port = free_port()
    pipe = subprocess.PIPE if capture else None
    p = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", "serve", str(model), "--port", str(port), *args],
                         env={**os.environ, "TALKINGHEAD_QUIET": "1"}, stdout=pipe, stderr=pipe, text=True)
    url, end = f"http://127.0.0.1:{port}", time.time() + timeout_s
    while time.time() < end:
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return p, url
        except OSError:
            if p.poll() is not None:
                raise RuntimeError(f"the server exited with {p.returncode}"
                                   + (f": {p.stderr.read()}" if capture else "")) from None
            time.sleep(0.5)
    p.kill()
    raise RuntimeError(f"the server did not come up in {timeout_s:.0f} s")


class LiveClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.video: list[float] = []  # arrival times
        self.audio: list[tuple[float, float]] = []  # (arrival, rms)
        self.events: list[dict] = []
        self.session: str | None = None
        self.status: int | None = None
        self.error: str | None = None

    async def __aenter__(self) -> "LiveClient":
        self.http = aiohttp.ClientSession()
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.tasks: list[asyncio.Task] = []

        @self.pc.on("track")
        def _track(track) -> None:
            self.tasks.append(asyncio.ensure_future(self._consume(track)))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        r = await self.http.post(self.url + "/offer", json={"sdp": self.pc.localDescription.sdp,
                                                            "type": self.pc.localDescription.type})
        self.status, answer = r.status, await r.json()
        if r.status != 200:
            self.error = answer.get("error")
            return self
        self.session = answer["session"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        self.ws = await self.http.ws_connect(f"{self.url}/ws?session={self.session}")
        self.tasks.append(asyncio.ensure_future(self._listen()))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if getattr(self, "ws", None) is not None:
            await self.ws.close()
        await self.pc.close()
        await self.http.close()

    async def _consume(self, track) -> None:
        while True:
            try:
                f = await track.recv()
            except Exception:  # noqa: BLE001 - the track ended
                return
            now = time.time()
            if track.kind == "video":
                self.video.append(now)
            else:
                x = f.to_ndarray().astype(np.float32) / 32768
                self.audio.append((now, float(np.sqrt(np.mean(x ** 2)))))

    async def _listen(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append(msg.json())

    # ---- driving -------------------------------------------------------------------------------------
    async def send(self, message: dict) -> float:
        t = time.time()
        await self.ws.send_json(message)
        return t

    async def send_pcm(self, pcm16k: np.ndarray, chunk_s: float = 0.02, realtime: bool = True) -> float:
        """Stream 16 kHz audio as 16-bit PCM chunks (in real time by default); returns when it started."""
        t0, step = time.time(), int(16000 * chunk_s)
        for k, a in enumerate(range(0, len(pcm16k), step)):
            x = np.clip(np.round(pcm16k[a:a + step] * 32767), -32768, 32767).astype("<i2")
            await self.ws.send_bytes(x.tobytes())
            if realtime:
                await asyncio.sleep(max(0.0, t0 + (k + 1) * chunk_s - time.time()))
        await self.ws.send_json({"type": "end"})
        return t0

    async def wait_event(self, kind: str, after: float = 0.0, timeout: float = 30.0) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            for e in self.events:
                if e.get("type") == kind and e.get("t", 0) >= after:
                    return e
            await asyncio.sleep(0.01)
        raise TimeoutError(f"no {kind!r} event in {timeout} s")

    async def wait_frames(self, n: int, timeout: float = 30.0) -> None:
        end = time.time() + timeout
        while len(self.video) < n and time.time() < end:
            await asyncio.sleep(0.02)

    # ---- measuring -----------------------------------------------------------------------------------
    def first_sound(self, after: float, level: float = 0.01) -> float | None:
        for t, rms in self.audio:
            if t >= after and rms > level:
                return t
        return None

    def first_frame_after(self, t: float) -> float | None:
        for arrival in self.video:
            if arrival >= t:
                return arrival
        return None

    def fps(self, t0: float, t1: float) -> float:
        n = sum(1 for t in self.video if t0 <= t <= t1)
        return n / max(1e-9, t1 - t0)

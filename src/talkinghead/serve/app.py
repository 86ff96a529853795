"""The live server's web side (aiohttp): the page, WebRTC sessions, the agent WebSocket and the HTTP API.

Routes:

* ``GET /``: the page (``data/serve.html``).
* ``POST /offer``: a browser's (or any WebRTC peer's) SDP offer → the answer and a session id. Refused
  with 503 and one clear message when ``max_sessions`` are live.
* ``GET /ws?session=ID``: the session's control socket (the page and programs alike). In: JSON
  ``{"type": "text", "text": …}``, ``{"type": "start", "sample_rate": 24000}``, binary 16-bit little-endian
  mono PCM (16 kHz unless a ``start`` said otherwise), ``{"type": "end"}``, ``{"type": "interrupt"}``. Out:
  ``ready``, ``speaking`` / ``idle`` (with the wall-clock time the face starts / stops), ``error``.
  Without ``session`` it joins the newest live session.
* ``POST /session/ID/audio``: an audio file (wav, mp3, m4a, flac; the request body) to speak.
* ``POST /say``: ``{"text": …}`` → an mp4 of the person saying it (for scripts). ``GET /health``.

Nothing a client sends is ever used as a file-system path; sizes are limited (``ServeConfig``).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from ..audio.wav import SAMPLE_RATE, load_audio
from ..drive.speech import read_speech
from ..errors import InputError, TalkingHeadError
from .idle import IdleLoop
from .render import DecoderPool, LockedEngine, Renderer, Utterance
from .timeline import Timeline
from .tracks import TimelineAudio, TimelineVideo


@dataclass
class ServeConfig:
    max_sessions: int = 2
    max_text: int = 1000  # characters a text answer may have
    max_upload_mb: float = 10.0
    max_upload_s: float = 120.0
    idle_seconds: float = 6.0  # the idle loop's length
    connect_timeout_s: float = 30.0  # a session whose WebRTC connection never comes up is freed
    gap_s: float = 1.0  # a streamed answer ends after this long without audio
    # The defaults below were chosen by measurement: bench/RESULTS.md "live serving".
    commit_s: float = 0.05  # live phone recognition's wait after a phone (audio/stream.py): sooner first motion
    prebuffer_s: float = 0.0  # a streamed answer starts once this much is rendered (fewer holds, a later start)
    # a whole answer (text, upload) starts once, at the rate it renders, it can play to the end without a stutter,
    # waiting at most this long after its first frame (an idle server starts at once)
    start_wait_s: float = 0.5
    first_batch: int = 4  # whole answers: a small first batch shows the first frame soon, ramping (4, 6, 8) ...
    batch_size: int = 8  # ... to batches of this many frames, which render more frames a second
    stream_batch: int = 2  # streamed answers: the first frame alone, then batches of 2 (1 at a time holds frames)
    render_workers: int = 2  # answers rendering at once (render.Renderer); one per CPU core


class LiveSession:
    def __init__(self, server: "LiveServer"):
        self.id, self.server = uuid.uuid4().hex[:12], server
        self.sockets: set[web.WebSocketResponse] = set()
        self.timeline = Timeline(server.loop, server.renderer, self._utterance, on_event=self.broadcast,
                                 gap_s=server.cfg.gap_s, prebuffer_s=server.cfg.prebuffer_s,
                                 start_wait_s=server.cfg.start_wait_s)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.video, self.audio = TimelineVideo(self.timeline), TimelineAudio(self.timeline)
        self.created, self.closed = time.monotonic(), False

    def _utterance(self, offset: int, phones, kind: str) -> Utterance:
        s, cfg = self.server, self.server.cfg
        stream = kind == "stream"
        return Utterance(s.engine, s.loop, offset, phones=phones,
                         batch_size=cfg.stream_batch if stream else cfg.batch_size,
                         first_batch=1 if stream else cfg.first_batch, commit_s=cfg.commit_s, kind=kind, pool=s.pool)

    def broadcast(self, event: dict) -> None:
        for ws in list(self.sockets):
            if not ws.closed:
                asyncio.ensure_future(ws.send_json(event))

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.timeline.close()
        self.server.sessions.pop(self.id, None)
        for ws in list(self.sockets):
            await ws.close(message=b"session closed")
        await self.pc.close()


class LiveServer:
    def __init__(self, engine, cfg: ServeConfig, model_dir: Path):
        self.cfg, self.model_dir = cfg, model_dir
        self.engine = LockedEngine(engine)
        self.loop = IdleLoop(self.engine, cfg.idle_seconds)
        self.renderer, self.pool = Renderer(cfg.render_workers), DecoderPool()
        self.sessions: dict[str, LiveSession] = {}
        self.started = time.time()

    # ---- helpers -----------------------------------------------------------------------------------
    def session_for(self, sid: str | None) -> LiveSession:
        if sid:
            if sid not in self.sessions:
                raise web.HTTPNotFound(text=_err(f"no live session {sid!r}"), content_type="application/json")
            return self.sessions[sid]
        if not self.sessions:
            raise web.HTTPNotFound(text=_err("no live session: open the page (or POST /offer) first"),
                                   content_type="application/json")
        return max(self.sessions.values(), key=lambda s: s.created)

    def text_answer(self, text: str):
        text = (text or "").strip()
        if not text:
            raise InputError("the text is empty")
        if len(text) > self.cfg.max_text:
            raise InputError(f"the text has {len(text)} characters; at most {self.cfg.max_text}")
        return read_speech(text=text)

    def decode_upload(self, data: bytes) -> np.ndarray:
        if not data:
            raise InputError("the upload is empty")
        if len(data) > self.cfg.max_upload_mb * 1e6:
            raise InputError(f"the upload is {len(data) / 1e6:.1f} MB; at most {self.cfg.max_upload_mb:g} MB")
        fd, tmp = tempfile.mkstemp(prefix="talkinghead-upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            try:
                pcm = load_audio(tmp)
            except TalkingHeadError:
                raise InputError("the upload is not an audio file this server can read (wav, mp3, m4a, flac, ogg)")
        finally:
            os.unlink(tmp)
        if len(pcm) > self.cfg.max_upload_s * SAMPLE_RATE:
            raise InputError(f"the audio lasts {len(pcm) / SAMPLE_RATE:.0f} s; at most {self.cfg.max_upload_s:g} s")
        if len(pcm) < SAMPLE_RATE * 0.1:
            raise InputError("the audio is shorter than 0.1 s")
        return pcm

    async def close_all(self) -> None:
        for s in list(self.sessions.values()):
            await s.close()
        self.renderer.stop()


def _err(message: str) -> str:
    return json.dumps({"error": message})


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


KEY = web.AppKey("server", LiveServer)


async def index(request: web.Request) -> web.Response:
    page = resources.files("talkinghead").joinpath("data/serve.html").read_text()
    return web.Response(text=page, content_type="text/html")


async def health(request: web.Request) -> web.Response:
    s = request.app[KEY]
    return web.json_response({"status": "ok", "engine": s.engine.name, "model": s.model_dir.name,
                              "sessions": len(s.sessions), "max_sessions": s.cfg.max_sessions,
                              "fps": s.loop.fps, "size": s.loop.size, "uptime_s": round(time.time() - s.started, 1),
                              "holds": sum(x.timeline.stats["holds"] for x in s.sessions.values()),
                              "skipped_frames": sum(x.video.skipped for x in s.sessions.values()),
                              "render_error": None if s.renderer.error is None else str(s.renderer.error)})


async def offer(request: web.Request) -> web.Response:
    s = request.app[KEY]
    try:
        body = await request.json()
        desc = RTCSessionDescription(sdp=str(body["sdp"]), type=str(body["type"]))
    except (ValueError, KeyError, TypeError):
        return _bad('send {"sdp": ..., "type": "offer"}')
    if len(s.sessions) >= s.cfg.max_sessions:
        return _bad(f"the server is busy: {len(s.sessions)} of {s.cfg.max_sessions} live sessions in use "
                    "(talkinghead serve --max-sessions); try again later", 503)
    sess = LiveSession(s)
    s.sessions[sess.id] = sess

    @sess.pc.on("connectionstatechange")
    async def _state() -> None:
        if sess.pc.connectionState in ("failed", "closed"):
            await sess.close()

    async def _timeout() -> None:
        await asyncio.sleep(s.cfg.connect_timeout_s)
        if sess.pc.connectionState != "connected":
            await sess.close()

    try:
        sess.pc.addTrack(sess.video)
        sess.pc.addTrack(sess.audio)
        await sess.pc.setRemoteDescription(desc)
        await sess.pc.setLocalDescription(await sess.pc.createAnswer())
    except Exception as e:  # noqa: BLE001 - a malformed offer is the client's error
        await sess.close()
        return _bad(f"could not answer this offer: {e}")
    asyncio.ensure_future(_timeout())
    return web.json_response({"sdp": sess.pc.localDescription.sdp, "type": sess.pc.localDescription.type,
                              "session": sess.id})


async def upload(request: web.Request) -> web.Response:
    s = request.app[KEY]
    sess = s.session_for(request.match_info["sid"])
    try:
        pcm = await asyncio.to_thread(s.decode_upload, await request.read())
        sess.timeline.say(pcm, None, kind="file")
    except InputError as e:
        return _bad(str(e))
    except web.HTTPRequestEntityTooLarge:
        return _bad(f"the upload is larger than {s.cfg.max_upload_mb:g} MB", 413)
    return web.json_response({"ok": True, "seconds": round(len(pcm) / SAMPLE_RATE, 2)})


async def say_mp4(request: web.Request) -> web.StreamResponse:
    from ..drive import build_drive, default_pose
    from ..drive.speech import speech_features
    from ..say.pipeline import write_drive

    s = request.app[KEY]
    try:
        body = await request.json()
        text = body["text"] if isinstance(body, dict) else None
    except (ValueError, KeyError):
        text = None
    if not isinstance(text, str):
        return _bad('send {"text": "..."}')
    try:
        pcm, phones = await asyncio.to_thread(s.text_answer, text)
    except InputError as e:
        return _bad(str(e))
    fd, tmp = tempfile.mkstemp(prefix="talkinghead-say-", suffix=".mp4")
    os.close(fd)
    try:
        def render() -> bytes:
            speech = speech_features(pcm, phones, s.loop.fps, s.engine.features)
            drive = build_drive(s.engine, speech=speech, pose=default_pose(s.engine))
            write_drive(s.engine, drive, tmp, crop=True, progress=False)
            return Path(tmp).read_bytes()

        data = await asyncio.to_thread(render)
    finally:
        os.unlink(tmp)
    return web.Response(body=data, content_type="video/mp4")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    s = request.app[KEY]
    sess = s.session_for(request.query.get("session"))
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=1 << 20)
    await ws.prepare(request)
    sess.sockets.add(ws)
    await ws.send_json({"type": "ready", "session": sess.id, "fps": s.loop.fps, "sample_rate": SAMPLE_RATE})
    rate, resampler = SAMPLE_RATE, None
    try:
        async for msg in ws:
            try:
                if msg.type == WSMsgType.BINARY:
                    pcm = np.frombuffer(msg.data[: len(msg.data) // 2 * 2], "<i2").astype(np.float32) / 32768
                    if rate != SAMPLE_RATE:
                        pcm = resampler.push(pcm)
                    sess.timeline.stream(pcm)
                elif msg.type == WSMsgType.TEXT:
                    rate, resampler = await _control(s, sess, json.loads(msg.data), rate, resampler)
            except (InputError, ValueError, TypeError, KeyError) as e:
                await ws.send_json({"type": "error", "message": str(e) or "bad message"})
    finally:
        sess.sockets.discard(ws)
    return ws


async def _control(s: LiveServer, sess: LiveSession, m: dict, rate: int, resampler):
    kind = m.get("type") if isinstance(m, dict) else None
    if kind == "text":
        pcm, phones = await asyncio.to_thread(s.text_answer, str(m.get("text", "")))
        sess.timeline.say(pcm, phones, kind="text")
    elif kind == "start":
        rate = int(m.get("sample_rate", SAMPLE_RATE))
        if not 8000 <= rate <= 96000:
            raise InputError(f"sample_rate {rate}: use 8000..96000")
        resampler = StreamResampler(rate) if rate != SAMPLE_RATE else None
    elif kind == "end":
        sess.timeline.end_stream()
    elif kind == "interrupt":
        sess.timeline.interrupt()
    else:
        raise InputError(f"unknown message type {kind!r}; use text, start, end or interrupt")
    return rate, resampler


class StreamResampler:
    """Chunks of float audio at ``rate`` → 16 kHz, continuous across chunks (PyAV's resampler)."""

    def __init__(self, rate: int):
        from av import AudioResampler

        self.rate, self.r = rate, AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def push(self, pcm: np.ndarray) -> np.ndarray:
        from av import AudioFrame

        f = AudioFrame.from_ndarray(np.ascontiguousarray(pcm, np.float32)[None], format="flt", layout="mono")
        f.sample_rate = self.rate
        out = [x.to_ndarray().reshape(-1) for x in self.r.resample(f)]
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def make_app(server: LiveServer) -> web.Application:
    app = web.Application(client_max_size=int(server.cfg.max_upload_mb * 1e6) + (1 << 16))
    app[KEY] = server
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_post("/offer", offer)
    app.router.add_get("/ws", websocket)
    app.router.add_post("/session/{sid}/audio", upload)
    app.router.add_post("/say", say_mp4)

    async def _shutdown(app: web.Application) -> None:
        await app[KEY].close_all()

    app.on_shutdown.append(_shutdown)
    return app

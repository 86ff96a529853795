"""``talkinghead serve MODEL``: the person live in a browser, and the face of another program's voice.

The page (``GET /``) shows the person idling over WebRTC (aiortc: video and
audio tracks on one clock) and speaks what is typed (offline TTS), uploaded
or said into the microphone; Stop interrupts at once. Programs drive the same
stream through the WebSocket ``/ws`` (streamed PCM or text, ``speaking`` /
``idle`` events, ``interrupt``) or fetch an mp4 from ``POST /say``.

How it fits together: ``idle.IdleLoop`` renders the idle person once;
each answer is an ``render.Utterance`` rendered a few frames at a time by the
``render.Renderer`` workers as its audio arrives; each session's
``timeline.Timeline`` decides, slot by slot, which picture and which audio go
out; ``tracks`` send them; ``app`` is the web side.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import cv2

from ..progress import info, warn
from .app import LiveServer, ServeConfig, make_app

__all__ = ["serve", "ServeConfig", "LiveServer", "make_app"]


def _fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own heap (up to 8 per core), and the server's many threads
    (renderers, encoders, the event loop) each keep theirs: 2 arenas keep the memory flat (bench/RESULTS.md
    "live serving"). Nothing where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8080, device: str = "auto",
          subject: str | Path | None = None, config: ServeConfig | None = None, precision: str = "auto") -> None:
    """Load the model, render the idle loop, serve until Ctrl-C (then close every session)."""
    from aiohttp import web

    from ..engines import resolve_device
    from ..engines.modeldir import load_engine

    cfg = config or ServeConfig()
    # OpenCV's own thread pool fights the render workers for the cores (bench/RESULTS.md "live serving")
    cv2.setNumThreads(1)
    _fewer_malloc_arenas()
    engine = load_engine(Path(model_dir), resolve_device(device), subject, precision)
    sock = socket.create_server((host, port), reuse_port=False)  # a taken port fails before the idle loop renders
    try:
        server = LiveServer(engine, cfg, Path(model_dir))
    except BaseException:
        sock.close()
        raise
    if not _loopback(host):
        warn(f"serving on {host}: anyone who can reach this address can use the model (no authentication)")
    info(f"serving {Path(model_dir).name} ({engine.name}) on http://{host}:{sock.getsockname()[1]}/ "
         f"(Ctrl-C to stop)")
    web.run_app(make_app(server), sock=sock, print=None, handle_signals=True, shutdown_timeout=5)
    info("stopped")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"

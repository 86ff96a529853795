"""Be the voice of a talking head: stream a wav to ``talkinghead serve`` in real-time chunks, as an agent's TTS would.

    talkinghead serve MODEL &            # open http://127.0.0.1:8080/ to watch
    python examples/agent_client.py speech.wav [--url http://127.0.0.1:8080] [--session ID]

Sends 16-bit mono PCM in 20 ms chunks over the WebSocket ``/ws`` at the pace it
would be spoken (``{"type": "start", "sample_rate": R}`` first, so any rate is
fine), then ``{"type": "end"}``, and prints the server's events: ``speaking``
when the face starts, ``idle`` when it is free again. Ctrl-C sends
``{"type": "interrupt"}`` (barge-in) before leaving. Needs only ``aiohttp`` and
``numpy``, and PyAV to read the file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
import av
import numpy as np

CHUNK_S = 0.02


def read_pcm(path: str) -> tuple[np.ndarray, int]:
    """The file's first audio track as mono int16 and its sample rate."""
    with av.open(path) as f:
        stream = f.streams.audio[0]
        rate = stream.rate
        res = av.AudioResampler(format="s16", layout="mono", rate=rate)
        parts = [r.to_ndarray().reshape(-1) for fr in f.decode(stream) for r in res.resample(fr)]
    return np.concatenate(parts).astype("<i2"), rate


async def main(a: argparse.Namespace) -> None:
    pcm, rate = read_pcm(a.wav)
    url = a.url.replace("http", "ws", 1).rstrip("/") + "/ws" + (f"?session={a.session}" if a.session else "")
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        async def events() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    e = json.loads(msg.data)
                    print(f"{time.strftime('%H:%M:%S')} {e}")
                    if e.get("type") == "idle":
                        return

        listener = asyncio.ensure_future(events())
        await ws.send_json({"type": "start", "sample_rate": rate})
        step, t0 = int(rate * CHUNK_S), time.monotonic()
        try:
            for k, i in enumerate(range(0, len(pcm), step)):
                await ws.send_bytes(pcm[i:i + step].tobytes())
                await asyncio.sleep(max(0.0, t0 + (k + 1) * CHUNK_S - time.monotonic()))  # real time
            await ws.send_json({"type": "end"})
            await asyncio.wait_for(listener, timeout=len(pcm) / rate + 30)
        except (KeyboardInterrupt, asyncio.CancelledError):
            await ws.send_json({"type": "interrupt"})
            raise


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wav")
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--session", help="the session to speak in (default: the newest, e.g. the open page)")
    try:
        asyncio.run(main(ap.parse_args()))
    except KeyboardInterrupt:
        pass

"""Live serving without a network: the idle loop, answers rendered as audio arrives, one clock for sound and picture."""

from __future__ import annotations

import time

import numpy as np
import pytest

from talkinghead.audio.tts import synthesize
from talkinghead.audio.wav import SAMPLE_RATE

pytestmark = pytest.mark.slow  # live sessions over a trained model


@pytest.fixture(scope="module")
def live(viseme_model):
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.serve.idle import IdleLoop
    from talkinghead.serve.render import LockedEngine, Renderer, Utterance

    engine = LockedEngine(load_engine(viseme_model, "cpu"))
    loop = IdleLoop(engine, seconds=2.0)
    renderer = Renderer()

    def make(events=None, **kw):
        from talkinghead.serve.timeline import Timeline

        made = []

        def utterance(offset, phones, kind):
            u = Utterance(engine, loop, offset, phones=phones, kind=kind, **kw)
            made.append(u)
            return u

        tl = Timeline(loop, renderer, utterance, on_event=(events.append if events is not None else None))
        return tl, made

    yield {"engine": engine, "loop": loop, "make": make}
    renderer.stop()


def run_slots(tl, n_max: int, until=lambda: False, realtime: bool = False) -> tuple[list, np.ndarray]:
    """Decide slots one by one (waiting for the renderer like a paced track would); pictures and audio."""
    images, audio = [], []
    for n in range(tl.decided, tl.decided + n_max):
        if realtime:
            time.sleep(1 / tl.fps)
        a, b = tl.slot_bounds(n)
        audio.append(tl.samples(a, b))
        images.append(tl.image(n))
        if until():
            break
    return images, np.concatenate(audio)


def wait_rendered(u, n: int, timeout: float = 60) -> None:
    end = time.time() + timeout
    while u.rendered < n and len(u.frames) < u.max_ahead and not u.render_done and time.time() < end:
        time.sleep(0.01)


def test_idle_loop_is_a_seamless_pingpong_of_recorded_frames(live):
    loop = live["loop"]
    assert loop.period == 2 * (len(loop.order) - 1)
    f = loop.frame(0)
    assert f.shape == (loop.size, loop.size, 3) and f.dtype == np.uint8
    poses = loop.poses(0, 3 * loop.period)
    assert np.all(np.abs(np.diff(poses)) <= 1)  # no jump, also where the loop wraps
    assert np.array_equal(poses[: loop.period], poses[loop.period: 2 * loop.period])
    assert np.array_equal(loop.frame(loop.period + 5), loop.frame(5))


def test_idle_loop_follows_the_motion_learners_listening_motion(live, viseme_model, tmp_path):
    import shutil

    from talkinghead.drive.speech import speech_features
    from talkinghead.engines.modeldir import load_engine
    from talkinghead.motion import MotionModel
    from talkinghead.motion.head import pose_vectors
    from talkinghead.serve.idle import calm_window, idle_frames, silence

    subject, order = live["engine"].subject, live["loop"].order
    lo, hi = subject.meta["split"]["train"]
    motion = MotionModel.load(viseme_model)
    assert motion is not None  # the tiny model trains its motion learners too
    quiet = speech_features(silence(int(len(order) * SAMPLE_RATE / subject.fps)), [], subject.fps, ("visemes",))
    wanted = motion.head_motion(quiet.visemes[:len(order)], None, 0)[:, :3]
    rec = pose_vectors(subject.tracks["rotation"], subject.tracks["translation"])[:, :3]
    scale = rec[lo:hi].std(0)

    def off(frames):  # mean distance of replayed poses from the learner's, in training deviations
        return float(np.linalg.norm((rec[frames] - wanted) / scale, axis=1).mean())

    calm = calm_window(subject, len(order)) + np.arange(len(order))
    assert np.all(np.abs(np.diff(order)) == 1) and lo <= order.min() and order.max() < hi
    assert off(order) < 0.8 * off(calm), (off(order), off(calm))
    # a model without motion learners idles on the calmest stretch of the recording
    bare = tmp_path / "bare"
    shutil.copytree(viseme_model, bare, ignore=shutil.ignore_patterns("motion.pt", "checkpoint_*"))
    assert np.array_equal(idle_frames(load_engine(bare, "cpu"), len(order)), calm)


def test_an_answer_plays_its_own_audio_sample_exact_with_its_frames_then_idles(live):
    events = []
    tl, made = live["make"](events, max_ahead=10**4)
    tts = synthesize("Papa bought a map.").resampled(SAMPLE_RATE)
    run_slots(tl, 10)  # idling
    tl.say(tts.audio, tts.phonemes)
    u = made[-1]
    wait_rendered(u, 10**6)  # everything rendered before playback: no holds, the exact alignment is checked
    images, audio = run_slots(tl, 400, until=lambda: any(e["type"] == "idle" for e in events))
    kinds = [e["type"] for e in events]
    assert kinds == ["speaking", "idle"] and events[1]["reason"] == "done"
    n_frames = int(np.ceil(len(tts.audio) / SAMPLE_RATE * tl.fps))
    assert u.played == n_frames and tl.stats["holds"] == 0
    # the answer's audio sits in the slots exactly: frame m with samples round(m sr / fps)..
    start = int(round((events[0]["t"] - tl.clock()) * tl.fps))  # the slot the answer started in
    a = tl.slot_bounds(start)[0] - tl.slot_bounds(10)[0]
    played = audio[a:a + len(tts.audio)]
    assert np.allclose(played, tts.audio, atol=1e-6)


def test_the_mouth_moves_during_an_answer_and_only_the_mouth(live):
    """Each answer frame against the idle loop's frame at the same recorded pose (rendered from silence)."""
    events = []
    tl, made = live["make"](events, max_ahead=10**4)
    engine, loop = live["engine"], live["loop"]
    lo, hi = engine.subject.meta["split"]["train"]
    x0, y0, x1, y1 = np.median(engine.subject.tracks["lip_box"][lo:hi], 0).astype(int)
    tts = synthesize("Papa. Ah. Bob. Ah.", rate=120).resampled(SAMPLE_RATE)
    run_slots(tl, 25)
    tl.say(tts.audio, tts.phonemes)
    u = made[-1]
    wait_rendered(u, 10**6)
    speech, _ = run_slots(tl, 400, until=lambda: any(e["type"] == "idle" for e in events))
    speech = speech[-u.played - 1:-1]  # the answer's frames (the last slot is idle again)
    same_pose = [loop.frame(u.offset + m) for m in range(u.played)]
    diff = np.array([np.abs(s.astype(np.float32) - i)[y0:y1, x0:x1].mean() for s, i in zip(speech, same_pose)])
    eyes = np.array([np.abs(s.astype(np.float32) - i)[: y0 // 2].mean() for s, i in zip(speech, same_pose)])
    assert diff.max() > 8 and np.percentile(diff, 10) < 3, diff.round(1)  # opens on vowels, rests in pauses
    assert eyes.max() < 3  # the rest of the face is the idle picture (JPEG noise only)


def test_interrupt_stops_speech_at_once_and_the_head_continues(live):
    events = []
    tl, made = live["make"](events)
    tts = synthesize("This is a long answer that will be cut short by the listener.").resampled(SAMPLE_RATE)
    tl.say(tts.audio, tts.phonemes)
    wait_rendered(made[-1], 20)
    run_slots(tl, 15)
    assert events[0]["type"] == "speaking"
    played = made[-1].played
    tl.interrupt()
    assert events[-1] == {**events[-1], "type": "idle", "reason": "interrupted"}
    _, after = run_slots(tl, 10)
    assert np.abs(after).max() == 0  # silence right away
    assert tl.idle_pos == made[-1].offset + played + 10  # the loop goes on from the answer's last pose


def test_streamed_speech_with_nobody_watching_renders_a_bounded_buffer(live):
    tl, made = live["make"]()
    tts = synthesize("Streaming speech from another program, chunk by chunk.").resampled(SAMPLE_RATE)
    for a in range(0, len(tts.audio), 320):
        tl.stream(tts.audio[a:a + 320])
    u = made[-1]
    assert len(made) == 1 and u.kind == "stream"
    tl.end_stream()
    time.sleep(3)  # nobody takes frames: rendering stops at max_ahead
    total = int(np.ceil(len(tts.audio) / SAMPLE_RATE * tl.fps))
    assert u.max_ahead <= u.rendered == len(u.frames) <= u.max_ahead + 8 < total  # one chunk past, no more
    tl.close()
    assert u.cancelled and not u.frames


def test_late_frames_hold_the_picture_and_pause_the_sound_together(live):
    events = []
    tl, made = live["make"](events)
    tl.gap_s = 600  # the pause below must not end the answer
    tts = synthesize("Hold on.").resampled(SAMPLE_RATE)
    tl.stream(tts.audio[:8000])  # half a second, then the speaker pauses mid-answer
    u = made[-1]
    wait_rendered(u, 3)  # live phones are final 0.1-0.2 s behind the audio: ~5 frames can render now
    time.sleep(0.5)
    _, audio = run_slots(tl, 40)
    holds = tl.stats["holds"]
    assert holds > 0 and events[0]["type"] == "speaking"
    spoken = np.flatnonzero(np.abs(audio) > 0)
    assert len(audio[spoken[0]:spoken[-1] + 1]) <= 8000  # nothing of the answer skipped, nothing invented
    tl.stream(tts.audio[8000:])
    tl.end_stream()
    wait_rendered(u, 10**6)
    run_slots(tl, 200, until=lambda: events[-1]["type"] == "idle")
    assert u.played == int(np.ceil(len(tts.audio) / SAMPLE_RATE * tl.fps))


def test_a_whole_answer_starts_when_it_can_play_to_the_end_without_a_stutter(live):
    """Before its first frame plays, an answer whose audio is all in waits until, at the rate it renders,
    the rest will be ready in time: at once on an idle server, later on a busy one, never past the cap."""
    from collections import deque

    from talkinghead.serve.render import Utterance

    u = Utterance(live["engine"], live["loop"], 0)
    now = time.monotonic()
    u.fed, u.input_done = 4 * SAMPLE_RATE, True  # 100 frames at 25 fps: 4 s of playback
    u.frames, u.rendered, u.first_at = deque([None] * 10), 10, now

    u.started = now - 0.45  # 22 frames/s: the other 90 take 4.05 s, within the slack of 4 s
    assert u.ready(0, max_wait_s=1.0)
    u.started = now - 1.0  # 10 frames/s: 9 s > 4 s: wait
    assert not u.ready(0, max_wait_s=1.0)
    assert u.ready(0, max_wait_s=0.0)  # no waiting asked for
    u.first_at = now - 1.5
    assert u.ready(0, max_wait_s=1.0)  # waited long enough
    u.first_at, u.started, u.input_done = now, now - 1.0, False
    assert u.ready(0, max_wait_s=1.0)  # streamed speech: its length is unknown, it starts at once
    u.input_done, u.frames = True, deque([None] * u.max_ahead)
    assert u.ready(0, max_wait_s=1.0)  # a full buffer starts it (rendering has stopped)
    u.played = 1
    u.frames = deque([None])
    u.started = now - 100
    assert u.ready(0, max_wait_s=1.0)  # once playing it never waits for the rate

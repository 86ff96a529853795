"""Shared fixtures: one prepared synthetic speaker for every engine's end-to-end tests.

Tests that train an engine, prepare a whole video, serve or drive a browser are marked ``slow``; ``pytest -m
"not slow"`` is the fast lane. A test that uses the prepared speaker or the trained viseme model is slow
whatever its own marks say (those fixtures prepare and train), so a new one cannot slip into the fast lane.
"""

from __future__ import annotations

import os

import pytest

SLOW_FIXTURES = {"speaker_subject", "viseme_model"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def speaker_subject(tmp_path_factory):
    """A 14 s synthetic speaker (seed 3) prepared at 256²: the subject the engine tests train on."""
    os.environ["TALKINGHEAD_QUIET"] = "1"
    from talkinghead.prepare.pipeline import PrepareConfig, prepare
    from talkinghead.synth.speaker import synthesize_speaker

    tmp = tmp_path_factory.mktemp("speaker")
    video = synthesize_speaker(tmp / "speaker.mp4", seconds=14, seed=3, size=256)
    return prepare(video, tmp / "subject", config=PrepareConfig(size=256))


VISEME_TINY = ["size=64", "mouth_size=32", "base=8", "batch_size=8", "gan_start=100000", "val_frames=4",
               "lr=0.001"]


@pytest.fixture(scope="session")
def viseme_model(tmp_path_factory, speaker_subject):
    """A tiny viseme model of the synthetic speaker (900 steps): opens its mouth for vowels, shuts in silence."""
    from talkinghead.train.pipeline import train

    return train(speaker_subject, "viseme", tmp_path_factory.mktemp("viseme") / "model", steps=900, device="cpu",
                 overrides=VISEME_TINY)


@pytest.fixture
def cli(capsys):
    """Run the command line: ``cli(*argv)`` → (exit code, its first ``error:`` line or "")."""
    from talkinghead.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
        return code, err[0] if err else ""

    return run

"""The engine interface from outside: a toy third engine trains, says and evaluates through the public API;
abilities are checked in one place; a render session and a drive schedule do not depend on chunking."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from talkinghead.cli import main
from talkinghead.engines import (Drive, Engine, EngineConfig, Phase, TrainModel, Validation, register_engine)
from talkinghead.io.video import iter_frames, probe


# ---------------------------------------------------------------- a toy engine: constant-colour lips

@dataclass
class ToyConfig(EngineConfig):
    lr: float = 0.05
    val_frames: int = 2


def paint(frame: np.ndarray, box, colour) -> np.ndarray:
    out = frame.copy()
    x0, y0, x1, y1 = np.round(box).astype(int)
    out[y0:y1, x0:x1] = np.clip(np.round(np.asarray(colour) * 255), 0, 255).astype(np.uint8)
    return out


class ToyModel(TrainModel):
    def __init__(self, subject, cfg, train_idx, val_idx):
        self.subject, self.cfg, self.train_idx, self.val_idx = subject, cfg, train_idx, val_idx
        self.lips = nn.Module()
        self.lips.colour = nn.Parameter(torch.zeros(3))

    def modules(self):
        return {"lips": self.lips}

    def param_groups(self):
        return {"lips": [{"params": [self.lips.colour], "lr": self.cfg.lr}]}

    def phases(self):
        return [Phase("lips", 1.0, self.batch, {"lips": self.losses})]

    def batch(self, step):
        i = int(np.random.choice(self.train_idx))
        x0, y0, x1, y1 = np.round(self.subject.tracks["lip_box"][i]).astype(int)
        return {"px": torch.from_numpy(self.subject.frame(i)[y0:y1, x0:x1].reshape(-1, 3) / 255.0).float()}

    def losses(self, b, step):
        return {"mse": ((self.lips.colour - b["px"]) ** 2).mean()}

    def validation(self, phase, modules):
        c = modules["lips"].colour.detach().numpy()
        boxes = self.subject.tracks["lip_box"][self.val_idx]
        real = np.stack([self.subject.frame(int(i)) for i in self.val_idx])
        return Validation(pred=np.stack([paint(f, b, c) for f, b in zip(real, boxes)]), real=real, boxes=boxes)

    def export(self, modules):
        return {"colour": modules["lips"].colour.detach().tolist()}


class ToyEngine(Engine):
    name, Config, features = "toy", ToyConfig, ("mel",)

    @classmethod
    def trainable(cls, subject, config, device, train_idx, val_idx):
        return ToyModel(subject, config, train_idx, val_idx)

    @classmethod
    def load(cls, model_dir, subject, device):
        eng = cls(model_dir, subject, device)
        eng.colour = torch.load(model_dir / "weights.pt")["colour"]
        return eng

    def render_batch(self, rows, ks, prepared, state):
        boxes = self.subject.tracks["lip_box"]
        return [paint(self.subject.frame(int(j)), boxes[int(j)], self.colour) for j in rows.pose_index[ks]]


@pytest.mark.slow  # trains an engine, says, evaluates
def test_a_third_engine_trains_says_and_evaluates_through_the_public_interface(speaker_subject, tmp_path, cli):
    register_engine("toy", ToyEngine)
    model = tmp_path / "toy"
    assert main(["train", str(speaker_subject), "--engine", "toy", "-o", str(model), "--steps", "150"]) == 0
    meta = json.loads((model / "model.json").read_text())
    assert meta["engine"] == "toy" and meta["status"] == "trained" and meta["config"]["lr"] == 0.05
    assert list((model / "previews").glob("lips_*.png")) and "lips_psnr_mouth" in (model / "train_log.csv").read_text()
    # the trainer's optimiser found the subject's mean lip colour
    from talkinghead.subject import Subject

    s = Subject.open(speaker_subject)
    lips = np.concatenate([s.frame(i)[int(b[1]):int(b[3]), int(b[0]):int(b[2])].reshape(-1, 3)
                           for i, b in zip(range(0, 200, 10), s.tracks["lip_box"][0:200:10])]) / 255
    assert np.abs(np.array(torch.load(model / "weights.pt")["colour"]) - lips.mean(0)).max() < 0.06

    out = tmp_path / "toy.mp4"
    assert main(["say", str(model), "--text", "Hello there.", "-o", str(out)]) == 0
    info = probe(out)
    assert info.has_audio and (info.width, info.height) == (256, 256)
    frames = list(iter_frames(out, 25))
    box = np.round(s.tracks["lip_box"][s.meta["split"]["train"][0]]).astype(int)
    inner = frames[0][box[1] + 3:box[3] - 3, box[0] + 3:box[2] - 3].reshape(-1, 3).mean(0) / 255
    assert np.abs(inner - np.array(torch.load(model / "weights.pt")["colour"])).max() < 0.04  # painted lips

    assert main(["evaluate", str(model), "-o", str(tmp_path / "report")]) == 0
    m = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert 15 < m["psnr"] < 60 and m["psnr_mouth"] < m["psnr"]  # lips replaced by one colour

    # Abilities: one clear line naming what the engine can do, nothing written.
    (tmp_path / "pose.txt").write_text("0 0 0\n")
    bad = tmp_path / "bad.mp4"
    code, err = cli("say", model, "--text", "hi", "-o", bad, "--background", tmp_path / "x.png")
    assert code == 2 and "toy engine cannot swap the background" in err and "nerf" in err
    code, err = cli("say", model, "--text", "hi", "-o", bad, "--pose", tmp_path / "pose.txt")
    assert code == 2 and "cannot render any head pose" in err and "replay recorded poses" in err
    for ask in (["--eye", "0.5"], ["--blink", "natural"]):
        code, err = cli("say", model, "--text", "hi", "-o", bad, *ask)
        assert code == 2 and "cannot set eye openness" in err, ask
    assert not bad.exists()
    # A model directory of another engine is not trained over.
    code, err = cli("train", speaker_subject, "--engine", "viseme", "-o", model, "--steps", "1")
    assert code == 2 and "holds a 'toy' model" in err


# ---------------------------------------------------------------- sessions and schedules

class CountingEngine(Engine):
    """Renders the mean of each frame's window of 'visemes' rows (k-2 .. k+2): exposes look-ahead and history."""

    name, lookahead = "counting", 2

    def __init__(self):
        self.batches, self.kept = [], []

    @classmethod
    def trainable(cls, *a):
        raise NotImplementedError

    @classmethod
    def load(cls, *a):
        raise NotImplementedError

    def render_batch(self, rows, ks, prepared, state):
        self.batches.append(len(ks))
        self.kept.append(len(rows))
        v = rows.visemes[:, 0]
        return [np.array([v[np.clip(np.arange(k - 2, k + 3), 0, len(v) - 1)].mean()]) for k in ks]


def drive_of(values: np.ndarray) -> Drive:
    n = len(values)
    return Drive(fps=25.0, visemes=np.repeat(values[:, None], 15, 1), mel_windows=None,
                 pose_index=np.zeros(n, np.int64), eye=np.ones((n, 2), np.float32))


@pytest.mark.parametrize("chunk,first", [(1, None), (3, None), (7, None), (25, None), (1000, None), (1, 1),
                                         (3, 2), (7, 1), (1000, 2)])
def test_session_output_does_not_depend_on_chunking_and_memory_stays_bounded(chunk, first):
    v = np.sin(np.arange(3000) * 0.37)
    want = [np.array([v[np.clip(np.arange(k - 2, k + 3), 0, len(v) - 1)].mean()]) for k in range(len(v))]
    eng = CountingEngine()
    s = eng.session(batch_size=4, first_batch=first)
    got = []
    for part in drive_of(v).chunks(chunk):
        got += list(s.push(part))
        assert len(got) >= s.received - eng.lookahead - 4  # never more behind than look-ahead + a batch
    got += list(s.end())
    assert np.array_equal(np.concatenate(got), np.concatenate(want))
    # batches fixed from the first frame: a ramp from the first one's size (x1.5) to 4 (the last may be short)
    ramp = {None: [4], 1: [1, 2, 3, 4], 2: [2, 3, 4]}[first]
    assert eng.batches[:len(ramp)] == ramp and all(b == 4 for b in eng.batches[len(ramp):-1])
    assert sum(eng.batches) == len(v)
    assert max(eng.kept) <= s.history + eng.lookahead + 4 + chunk + 4  # history, not the whole stream


def test_a_locked_engine_renders_whole_drives_and_sessions_under_its_lock():
    """The live server's wrapper: a session and a whole render both go through its locked batches."""
    from talkinghead.serve.render import LockedEngine

    class Watched(CountingEngine):
        def render_batch(self, rows, ks, prepared, state):
            assert locked.lock.locked()
            return super().render_batch(rows, ks, prepared, state)

    v = np.sin(np.arange(50) * 0.37)
    inner = Watched()
    locked = LockedEngine(inner)
    whole = list(locked.render(drive_of(v), batch_size=4))
    s = locked.session(batch_size=4)
    streamed = list(s.push(drive_of(v))) + list(s.end())
    assert np.array_equal(np.concatenate(whole), np.concatenate(streamed)) and len(whole) == len(v)
    assert sum(inner.batches) == 2 * len(v)


def test_a_drive_asking_for_an_ability_the_engine_lacks_names_the_engines_that_have_it():
    from talkinghead.drive import check_request
    from talkinghead.errors import InputError

    with pytest.raises(InputError) as e:
        check_request(ToyEngine, background=np.zeros((4, 4, 3), np.uint8))
    assert str(e.value).startswith("the toy engine cannot swap the background") and "engines that can: nerf" in str(e.value)
    with pytest.raises(InputError, match="cannot render any head pose.*replay recorded poses"):
        check_request(ToyEngine, pose="pose.txt")
    check_request(ToyEngine, pose="still")  # what it can do passes


def test_schedule_rows_of_any_range_equal_the_whole():
    from talkinghead.drive import Schedule
    from talkinghead.subject import Subject

    class FakeSubject(Subject):
        pass

    n = 300
    rng = np.random.default_rng(0)
    s = FakeSubject.__new__(FakeSubject)
    s.__dict__.update(meta={"split": {"train": [10, 90]}, "fps": 25.0},
                      tracks={"eye": rng.uniform(0.2, 0.3, (100, 2)), "euler_deg": rng.normal(0, 3, (100, 3)),
                              "aperture": rng.uniform(0, 0.3, 100), "translation": np.zeros((100, 3))})
    s.path = None
    for pose in ("train", "still"):
        whole = Schedule(s, pose=pose).rows(0, n)
        sch = Schedule(s, pose=pose)
        parts = [sch.rows(a, min(n, a + 37)) for a in range(0, n, 37)]
        for k in ("pose_index", "eye"):
            assert np.array_equal(np.concatenate([p[k] for p in parts]), whole[k]), (pose, k)
    assert len(set(Schedule(s, pose="still").rows(0, n)["pose_index"])) == 1
    eye = Schedule(s, pose="still").rows(0, n)["eye"].mean(1)
    assert eye.min() < 0.5 * eye.max()  # natural blinks when nothing is replayed
    assert math.isclose(float(np.median(eye)), float(np.percentile(s.tracks["eye"][10:90], 70, axis=0).mean()),
                        rel_tol=1e-5)


def test_natural_blinks_over_a_replay_whose_recording_never_blinks():
    from talkinghead.drive.schedule import Schedule, has_blink
    from talkinghead.subject import Subject

    class FakeSubject(Subject):
        pass

    s = FakeSubject.__new__(FakeSubject)
    eye = np.full((100, 2), 0.3) + np.random.default_rng(1).uniform(-0.01, 0.01, (100, 2))
    eye[60:63] = 0.05  # one recorded blink
    s.__dict__.update(meta={"split": {"train": [0, 100]}, "fps": 25.0},
                      tracks={"eye": eye, "euler_deg": np.zeros((100, 3)), "aperture": np.zeros(100),
                              "translation": np.zeros((100, 3))})
    s.path = None
    assert has_blink(s, np.arange(55, 70)) and not has_blink(s, np.arange(0, 55))
    frames = np.r_[np.arange(10, 50), np.arange(50, 10, -1)].repeat(3)  # 9.6 s replayed without a blink
    auto = Schedule(s, pose=frames).rows(0, len(frames))["eye"]
    assert np.array_equal(auto, eye[frames].astype(np.float32))  # the replayed frames' own eyes
    sch = Schedule(s, pose=frames, blink="natural", seed=3)
    nat = np.concatenate([sch.rows(a, min(len(frames), a + 17))["eye"] for a in range(0, len(frames), 17)])
    ratio = (nat / auto).mean(1)
    assert ratio.max() <= 1 + 1e-6 and ratio.min() < 0.2  # dips to 10 % at a blink's middle, never opens wider
    starts = np.flatnonzero((ratio < 0.6) & (np.r_[1.0, ratio[:-1]] >= 0.6))
    assert 2 <= len(starts) <= 5  # one every 2-6 s
    assert np.all(np.diff(starts) >= 2.0 * 25 - 6)
    assert np.array_equal(nat, Schedule(s, pose=frames, blink="natural", seed=3).rows(0, len(frames))["eye"])


def test_auto_blinks_are_added_only_where_the_recording_seldom_blinks():
    from types import SimpleNamespace

    from talkinghead.drive.build import resolved_blink
    from talkinghead.drive.schedule import blink_rate
    from talkinghead.subject import Subject

    class FakeSubject(Subject):
        pass

    def subject(blink_every_s: float | None) -> Subject:
        s = FakeSubject.__new__(FakeSubject)
        eye = np.full((1500, 2), 0.3)  # 60 s at 25 fps
        if blink_every_s:
            for t in np.arange(1.0, 60.0, blink_every_s):
                eye[int(t * 25):int(t * 25) + 4] = 0.05
        s.__dict__.update(meta={"split": {"train": [0, 1500]}, "fps": 25.0}, tracks={"eye": eye})
        return s

    assert blink_rate(subject(None)) == 0 and blink_rate(subject(4.0)) == pytest.approx(15, abs=1)
    draws = SimpleNamespace(eye_control=True, subject=subject(30.0))  # 2 blinks a minute
    assert resolved_blink(draws, "auto", "train") == "natural" == resolved_blink(draws, "auto", "audio")
    assert resolved_blink(draws, "auto", np.arange(10)) == "auto"  # given frames: as recorded (evaluation)
    assert resolved_blink(draws, "auto", "still") == "auto" and resolved_blink(draws, "none", "train") == "none"
    assert resolved_blink(SimpleNamespace(eye_control=True, subject=subject(4.0)), "auto", "train") == "auto"
    assert resolved_blink(SimpleNamespace(eye_control=False, subject=subject(None)), "auto", "train") == "auto"

"""Compositing (talkinghead.compose): 'over' and blends in closed form, the paste, the masks, the frame cache."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from talkinghead.compose import (RecordedFrames, blend, eye_mask, feathered_polygon, lower_face_mask, mask_bbox, over,
                                 paste, place, speech_face_mask)
from talkinghead.geometry import pose as P


def test_over_closed_form_numpy_and_torch():
    rgb, a, under = np.array([[0.3, 0.2, 0.1]]), np.array([0.5]), np.array([[1.0, 0.0, 0.5]])
    np.testing.assert_allclose(over(rgb, a, under), [[0.8, 0.2, 0.35]])
    # a stack of opacities: 1 - (1 - a)(1 - b)
    ta, tb = torch.tensor([0.5, 0.2]), torch.tensor([0.5, 1.0])
    torch.testing.assert_close(over(ta, ta, tb), 1 - (1 - ta) * (1 - tb))
    # opaque top hides what is under; transparent top shows it
    x = torch.rand(4, 3)
    torch.testing.assert_close(over(x, torch.ones(4), torch.rand(4, 3)), x)
    torch.testing.assert_close(over(torch.zeros(4, 3), torch.zeros(4), x), x)


def test_blend_and_paste():
    assert blend(10.0, 20.0, 0.25) == 12.5
    frame = np.zeros((40, 50, 3), np.uint8)
    crop = np.full((8, 8, 3), 200, np.uint8)
    mask = np.ones((16, 16, 1), np.float32)
    mask[:, :8] = 0.5
    out = paste(frame, crop, (44, 30, 16), mask)  # the region runs past the right and bottom edges
    assert out.shape == frame.shape and frame.max() == 0  # a new frame; the input is untouched
    assert (out[30:40, 52 - 8:] == 100).all() and (out[30:40, 44:46] == 100).all()
    assert (out[30:40, 46:50] == 100).all() and out[:30].max() == 0 and out[:, :44].max() == 0
    out = paste(frame, crop, (2, 3, 16), np.ones((16, 16, 1), np.float32))
    assert (out[3:19, 2:18] == 200).all() and out.sum() == 200 * 16 * 16 * 3


@pytest.mark.parametrize("region", [(-5, -3, 24), (30, 20, 24), (10, 8, 24)])
def test_paste_blends_only_under_the_mask_like_the_whole_region(region):
    """paste() blends only the mask's bounding box; the result equals blending the whole region (which is
    cut to the frame), wherever the region lies."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (40, 50, 3), np.uint8)
    crop = rng.integers(0, 256, (24, 24, 3), np.uint8)
    mask = np.zeros((24, 24, 1), np.float32)
    mask[6:17, 4:20] = rng.random((11, 16, 1))
    x0, y0, side = region
    ref = frame.astype(np.float32)
    for r in range(side):
        for c in range(side):
            y, x = y0 + r, x0 + c
            if 0 <= y < 40 and 0 <= x < 50:
                ref[y, x] = blend(ref[y, x], crop[r, c].astype(np.float32), mask[r, c])
    np.testing.assert_array_equal(paste(frame, crop, region, mask), ref.round().astype(np.uint8))
    assert paste(frame, crop, region, np.zeros_like(mask)).tolist() == frame.tolist()


def face_landmarks(size: int = 256) -> np.ndarray:
    R, t = P.matrix_from_euler(0, 0, 0), np.array([0.5, 1.0, 60.0])
    uv = P.project(P.canonical_face(), R, t, P.intrinsics(900, size, size))
    return np.concatenate([uv, np.zeros((len(uv), 1))], 1)


@pytest.mark.parametrize("origin", [(2, 3), (-2, -1), (5, 4), (-6, 0), (9, 9)])
def test_place_writes_the_crop_where_it_overlaps_the_canvas(origin):
    canvas, crop = np.zeros((8, 9), np.float32), np.arange(1, 21, dtype=np.float32).reshape(4, 5)
    out = place(canvas, crop, origin)
    want = np.zeros((8 + 20, 9 + 20), np.float32)  # the canvas with room around it, cut back after
    want[10 + origin[1]:14 + origin[1], 10 + origin[0]:15 + origin[0]] = crop
    assert np.array_equal(out, want[10:18, 10:19]) and not canvas.any()  # a copy: the canvas is untouched


@pytest.mark.parametrize("frac", [0.1, 0.5])
def test_lower_face_mask_is_soft_and_covers_the_lower_face(frac):
    lm = face_landmarks()
    m = lower_face_mask(lm, (256, 256), feather=6 * frac + 2)
    x, y = np.round(lm[13, :2]).astype(int)
    assert m[y, x] > 0.99 and m[0, 0] == 0 and 0 < m.mean() < 0.5
    assert ((m > 0.05) & (m < 0.95)).any()


@pytest.mark.parametrize("roll", [0.0, 25.0])
def test_speech_mask_keeps_the_upper_face_and_eye_mask_covers_only_the_eyes(roll):
    lm = face_landmarks()  # the face reaches y = 326: a taller frame
    c = lm[1, :2]
    a = np.radians(roll)  # the head rolled in the picture: the masks follow the face's own axis
    lm[:, :2] = (lm[:, :2] - c) @ np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) + c
    at = lambda m, i: m[tuple(np.round(lm[i, [1, 0]]).astype(int))]  # noqa: E731
    low = lower_face_mask(lm, (360, 280), 4)
    m = speech_face_mask(lm, (360, 280), 4)
    assert np.all(m <= low + 1e-6) and m.sum() < 0.8 * low.sum()
    for i in (13, 14, 17, 152):  # lips and chin: generated
        assert at(m, i) > 0.99, i
    for i in (159, 386, 168, 10):  # eyelids, between the eyes, forehead: recorded
        assert at(m, i) == 0, i
    assert 0 < at(m, 1) < 0.9  # the nose tip lies in the feathered band
    e = eye_mask(lm, (360, 280), 2)
    assert at(e, 159) > 0.99 and at(e, 386) > 0.99 and at(e, 13) == 0 and at(e, 1) == 0
    assert e.sum() < 0.15 * low.sum()


@pytest.mark.parametrize("shift", [(30, 25), (-12, 40), (60, 70), (200, 10)])
def test_feathered_polygon_equals_blurring_the_whole_frame(shift):
    """Blurring only the polygon's grown box gives the whole-frame blur exactly, also where the polygon
    crosses the frame's edge or lies outside it."""
    poly = np.array([[0, 0], [30, 4], [26, 28], [5, 22]], np.float64) + shift
    m = feathered_polygon(poly, (90, 80), feather=5)
    ref = np.zeros((90, 80), np.float32)
    cv2.fillPoly(ref, [np.round(poly).astype(np.int32)], 1.0)
    np.testing.assert_allclose(m, cv2.GaussianBlur(ref, (11, 11), 2.5), atol=1e-6)


def test_feathered_polygon_area_and_ramp():
    sq = np.array([[20, 20], [60, 20], [60, 60], [20, 60]], float)
    m = feathered_polygon(sq, (80, 80), feather=6)
    assert m.sum() == pytest.approx(41 * 41, rel=0.05)  # blurring keeps the area (fillPoly is inclusive)
    assert m[40, 40] == pytest.approx(1.0) and m[0, 0] == 0 and 0.2 < m[40, 20] < 0.8


class FakeSubject:
    def __init__(self):
        self.reads = 0

    def frame(self, j):
        self.reads += 1
        return np.full((32, 32, 3), j, np.uint8)

    def mask(self, j):
        return np.zeros((32, 32), np.uint8)


def test_recorded_frames_cache_and_paste():
    s = FakeSubject()
    rf = RecordedFrames(s, (8, 8, 16), lambda j, shape: np.ones(shape, np.float32) * 0.5, cache=2)
    out = rf.paste(np.full((4, 4, 3), 101, np.uint8), 7)
    assert out[0, 0, 0] == 7 and out[10, 10, 0] == 54  # (7 + 101) / 2
    rf.get(7), rf.get(8), rf.get(7)
    assert s.reads == 2  # cached
    rf.get(9), rf.get(8)
    assert s.reads == 4  # 8 was evicted (least recently used), 7 kept


def test_recorded_frames_extra_masks_count_only_as_weighted():
    half = lambda j, shape: np.full(shape, 0.5, np.float32)  # noqa: E731
    corner = np.zeros((32, 32), np.float32)
    corner[8:12, 8:12] = 1.0
    rf = RecordedFrames(FakeSubject(), (8, 8, 16), lambda j, shape: (half(j, shape), corner))
    assert np.array_equal(rf.mask(3), np.full((16, 16, 1), 0.5, np.float32))
    assert np.array_equal(rf.mask(3, [0.0]), rf.mask(3))
    m = rf.mask(3, [0.8])
    assert m.shape == (16, 16, 1) and np.allclose(m[:4, :4], 0.8) and np.allclose(m[4:, 4:], 0.5)
    out = rf.paste(np.full((16, 16, 3), 103, np.uint8), 3, [1.0])
    assert out[8, 8, 0] == 103 and out[20, 20, 0] == 53  # (3 + 103) / 2 outside the extra mask


def test_changed_mask_and_paste_back_keep_unchanged_pixels():
    from talkinghead.compose.fullframe import changed_mask, paste_back

    rng = np.random.default_rng(0)
    recorded = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    assert changed_mask(recorded, recorded).max() == 0
    render = recorded.copy()
    render[24:40, 24:40] = 255 - render[24:40, 24:40]  # what the engine changed
    m = changed_mask(render, recorded)
    assert m[28:36, 28:36].min() > 0.99 and m[:4].max() == 0 and m[:, -4:].max() == 0
    source = rng.integers(0, 255, (100, 120, 3), dtype=np.uint8)
    source[10:74, 30:94] = recorded  # the crop box (30, 10, 64) at scale 1
    out = paste_back(source, render, m, (30, 10, 64))
    assert out.shape == source.shape and out.dtype == np.uint8
    far = np.ones(source.shape[:2], bool)
    far[10:74, 30:94] = False
    assert (out[far] == source[far]).all()  # outside the crop: the source itself
    assert np.array_equal(out[10 + 28:10 + 36, 30 + 28:30 + 36], render[28:36, 28:36])
    assert np.array_equal(out[10:14, 30:94], source[10:14, 30:94])  # unchanged inside the crop: also the source
    big = paste_back(np.zeros((200, 200, 3), np.uint8), render, m, (-10.0, 40.0, 128.0))  # scale 2, off the edge
    assert np.abs(big[40 + 64, -10 + 64].astype(int) - render[32, 32]).max() <= 1 and big[:30].max() == 0


def test_mask_bbox_is_the_box_of_the_pixels_above_the_threshold():
    m = np.zeros((20, 30), np.float32)
    assert mask_bbox(m) is None
    m[4, 7], m[11, 22], m[15, 3] = 1.0, 0.5, 0.002  # the last is below 1/255
    assert mask_bbox(m) == (3, 4, 23, 16)  # ends exclusive
    assert mask_bbox(m, 1 / 255) == (7, 4, 23, 12)
    assert mask_bbox(m, 1.0) is None

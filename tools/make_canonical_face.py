"""Build ``src/talkinghead/data/canonical_face.npy``: our own mean face shape.

mediapipe 0.10.21's wheel does not ship the canonical face model, so we make
one: FaceMesh 3-D landmarks of the scikit-image astronaut photo, made
left-right symmetric (yaw and roll removed; pitch as in the photo, which looks
straight at the camera) and scaled so that the outer eye corners are 9 cm
apart (a typical adult biocular width). Units: cm;
axes: x right, y down, z away from the camera (OpenCV camera convention);
origin: the mean of the rigid points (see geometry.face.RIGID).

Run once with ``python tools/make_canonical_face.py``; the result is committed.
"""

from pathlib import Path

import mediapipe as mp
import numpy as np
import skimage.data
from scipy.spatial import cKDTree

from talkinghead.geometry import face
from talkinghead.geometry.pose import umeyama

OUT = Path(__file__).resolve().parents[1] / "src/talkinghead/data/canonical_face.npy"


def landmarks(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        res = fm.process(img)
    return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])


def mirror_pairs(pts: np.ndarray) -> np.ndarray:
    """Index of each point's mirror partner, by nearest neighbour after reflection."""
    ref = pts * np.array([-1.0, 1.0, 1.0])
    _, idx = cKDTree(pts).query(ref)
    return idx


def main() -> None:
    a = landmarks(skimage.data.astronaut())
    pts = (a - a.mean(0)) / face.face_scale(a)
    # Frontalise: rotate towards the symmetrised shape until it is its own mirror image.
    for _ in range(5):
        pairs = mirror_pairs(pts)
        sym = 0.5 * (pts + pts[pairs] * np.array([-1.0, 1.0, 1.0]))
        s, R, t = umeyama(pts, sym, scale=False)
        pts = pts @ R.T + t
    pairs = mirror_pairs(pts)
    pts = 0.5 * (pts + pts[pairs] * np.array([-1.0, 1.0, 1.0]))
    pts *= 9.0 / face.face_scale(pts)
    pts -= pts[face.RIGID].mean(0)
    np.save(OUT, pts.astype(np.float32))
    print(f"wrote {OUT}: {pts.shape}, eye corners {face.face_scale(pts):.2f} cm, "
          f"asymmetry {np.abs(pts - pts[mirror_pairs(pts)] * [-1, 1, 1]).mean():.4f} cm")


if __name__ == "__main__":
    main()

"""``preview.png``: one frame with landmarks, pose axes and masks, and the signals over time."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..geometry import pose as P
from ..utils import atomic_path

MASK_COLORS = np.array([[0, 0, 0], [60, 120, 255], [255, 200, 0], [255, 60, 60]], np.float32)


def overlay(frame: np.ndarray, labels: np.ndarray, lm: np.ndarray, R: np.ndarray, t: np.ndarray,
            K: np.ndarray) -> np.ndarray:
    """Frame with tinted mask labels, landmark dots, lip box and the head's x/y/z axes."""
    tint = MASK_COLORS[labels]
    out = np.where(labels[..., None] > 0, 0.65 * frame + 0.35 * tint, 0.6 * frame).astype(np.uint8)
    for x, y in lm[:, :2]:
        cv2.circle(out, (int(round(x)), int(round(y))), 1, (255, 255, 255), -1, cv2.LINE_AA)
    axes = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5]], np.float64) + [0, 2, -3]
    uv = P.project(axes, R.astype(np.float64), t.astype(np.float64), K.astype(np.float64))
    o = tuple(int(v) for v in uv[0])
    for k, color in zip(range(1, 4), [(255, 0, 0), (0, 255, 0), (0, 128, 255)]):
        cv2.arrowedLine(out, o, tuple(int(v) for v in uv[k]), color, 2, cv2.LINE_AA, tipLength=0.15)
    return out


def write_preview(subject_dir: Path, tracks: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subject_dir = Path(subject_dir)
    n = len(tracks["aperture"])
    i = int(np.argmax(tracks["aperture"]))  # the widest-open mouth shows the most
    frame = cv2.imread(str(subject_dir / "frames" / f"{i:06d}.jpg"))[..., ::-1]
    labels = cv2.imread(str(subject_dir / "masks" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
    img = overlay(frame, labels, tracks["landmarks"][i], tracks["rotation"][i],
                  tracks["translation"][i], tracks["intrinsics"])
    fig = plt.figure(figsize=(10, 5.6), dpi=100)
    ax = fig.add_axes([0.0, 0.0, 0.5, 1.0])
    ax.imshow(img)
    ax.set_axis_off()
    ax.set_title(f"frame {i}: landmarks, pose axes, head/torso/face masks", fontsize=9)
    t = np.arange(n)
    a1 = fig.add_axes([0.56, 0.56, 0.42, 0.38])
    a1.plot(t, tracks["aperture"], lw=0.8, color="tab:red")
    a1.set_ylabel("mouth aperture")
    a1.set_title("signals over frames", fontsize=9)
    a2 = fig.add_axes([0.56, 0.1, 0.42, 0.38], sharex=a1)
    a2.plot(t, tracks["eye"][:, 0], lw=0.8, label="right eye")
    a2.plot(t, tracks["eye"][:, 1], lw=0.8, label="left eye")
    a2.plot(t, np.where(tracks["found"], np.nan, 0.0), "k|", label="interpolated")
    a2.set_ylabel("eye openness")
    a2.set_xlabel("frame")
    a2.legend(fontsize=7, loc="lower right")
    with atomic_path(subject_dir / "preview.png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

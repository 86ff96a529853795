"""The ``talkinghead`` command line: one subcommand per stage.

Every user-facing failure is a ``TalkingHeadError``: one ``error:`` line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import TalkingHeadError


def _prepare(a: argparse.Namespace) -> None:
    from .prepare.pipeline import PrepareConfig, prepare

    cfg = PrepareConfig(fps=a.fps, size=a.size, val_fraction=a.val_fraction)
    out = prepare(a.video, a.output, audio=a.audio, config=cfg, force=a.force)
    print(out)


def _tts(a: argparse.Namespace) -> None:
    from .audio.tts import write_tts

    res = write_tts(a.text, a.output, voice=a.voice)
    print(f"{a.output} ({len(res.phonemes)} phonemes)")


def _synth(a: argparse.Namespace) -> None:
    from .synth.speaker import synthesize_speaker

    out = synthesize_speaker(a.output, text=a.text, seconds=a.seconds, seed=a.seed, size=a.size,
                             fps=a.fps, motion=a.motion)
    print(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talkinghead", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("prepare", help="video of one speaking person -> subject directory")
    s.add_argument("video")
    s.add_argument("-o", "--output", required=True, help="subject directory to write")
    s.add_argument("--audio", help="speech wav to use instead of the video's audio track")
    s.add_argument("--fps", type=float, default=25.0)
    s.add_argument("--size", type=int, default=512, help="crop side in pixels")
    s.add_argument("--val-fraction", type=float, default=0.1, help="last fraction held out")
    s.add_argument("--force", action="store_true", help="redo every stage")
    s.set_defaults(func=_prepare)

    s = sub.add_parser("tts", help="offline speech (espeak-ng) with phoneme timings")
    s.add_argument("text")
    s.add_argument("-o", "--output", required=True, help="wav to write (+ .phonemes.json beside it)")
    s.add_argument("--voice", default="en-us")
    s.set_defaults(func=_tts)

    s = sub.add_parser("synth", help="a synthetic talking person with ground truth")
    s.add_argument("-o", "--output", required=True, help="mp4 to write (+ .truth.npz beside it)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--text")
    g.add_argument("--seconds", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=512)
    s.add_argument("--fps", type=float, default=25.0)
    s.add_argument("--motion", type=float, default=1.0, help="head-motion amplitude (0 = still)")
    s.set_defaults(func=_synth)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except TalkingHeadError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

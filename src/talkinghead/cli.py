"""The ``talkinghead`` command line: one subcommand per stage.

Every user-facing failure is a ``TalkingHeadError``: one ``error:`` line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import TalkingHeadError, os_error_line


PRECISIONS = ("auto", "fp32", "bf16")  # nn.precision.PRECISIONS (not imported here: it pulls in torch)
PRECISION_HELP = "network arithmetic: auto (bfloat16 where the processor has it natively, else fp32), fp32, bf16"


FORCE_HELP = "replace an existing output that talkinghead did not write (a file), or write beside the files of " \
             "such a directory; an earlier result of talkinghead's own is replaced or resumed"


# ---- what several commands take ---------------------------------------------------------------------
def _force(s: argparse.ArgumentParser, help: str = FORCE_HELP) -> None:
    s.add_argument("--force", action="store_true", help=help)


def _training(s: argparse.ArgumentParser, default_minutes: float) -> None:
    """A training budget (minutes or steps) and the device."""
    g = s.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help=f"time budget (default {default_minutes:g})")
    g.add_argument("--steps", type=int, help="step budget")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda")


def _rendering(s: argparse.ArgumentParser) -> None:
    """The options of a command that loads a model to render: device, precision, the subject if it moved."""
    s.add_argument("--device", default="auto")
    s.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    s.add_argument("--subject", help="the subject directory, if it moved since training")


# ---- one command each: its arguments, then what it does --------------------------------------------
def _prepare_args(sub) -> None:
    s = sub.add_parser("prepare", help="video of one speaking person -> subject directory")
    s.add_argument("video")
    s.add_argument("-o", "--output", required=True, help="subject directory to write")
    s.add_argument("--audio", help="speech wav to use instead of the video's audio track")
    s.add_argument("--fps", type=float, default=25.0)
    s.add_argument("--size", type=int, default=512, help="crop side in pixels")
    s.add_argument("--val-fraction", type=float, default=0.1, help="last fraction held out")
    _force(s, "redo every stage; write into a directory that holds other files (they are left alone)")
    s.set_defaults(func=_prepare)


def _prepare(a: argparse.Namespace) -> None:
    from .prepare.pipeline import PrepareConfig, prepare

    cfg = PrepareConfig(fps=a.fps, size=a.size, val_fraction=a.val_fraction)
    out = prepare(a.video, a.output, audio=a.audio, config=cfg, force=a.force)
    print(out)


def _tts_args(sub) -> None:
    s = sub.add_parser("tts", help="offline speech (espeak-ng) with phoneme timings")
    s.add_argument("text")
    s.add_argument("-o", "--output", required=True, help="wav to write (+ .phonemes.json beside it)")
    s.add_argument("--voice", default="en-us")
    _force(s)
    s.set_defaults(func=_tts)


def _tts(a: argparse.Namespace) -> None:
    from .audio.tts import write_tts

    res = write_tts(a.text, a.output, voice=a.voice, force=a.force)
    print(f"{a.output} ({len(res.phonemes)} phonemes)")


def _synth_args(sub) -> None:
    s = sub.add_parser("synth", help="a synthetic talking person with ground truth")
    s.add_argument("-o", "--output", required=True, help="mp4 to write (+ .truth.npz beside it)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--text")
    g.add_argument("--seconds", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=512)
    s.add_argument("--fps", type=float, default=25.0)
    s.add_argument("--motion", type=float, default=1.0, help="head-motion amplitude (0 = still)")
    _force(s)
    s.set_defaults(func=_synth)


def _synth(a: argparse.Namespace) -> None:
    from .synth.speaker import synthesize_speaker

    out = synthesize_speaker(a.output, text=a.text, seconds=a.seconds, seed=a.seed, size=a.size,
                             fps=a.fps, motion=a.motion, force=a.force)
    print(out)


def _train_args(sub) -> None:
    s = sub.add_parser("train", help="subject directory -> model directory (resumable)")
    s.add_argument("subject")
    s.add_argument("--engine", default="viseme")
    s.add_argument("-o", "--output", help="model directory (default: SUBJECT_<engine>)")
    _training(s, 10)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="engine setting, repeatable")
    s.add_argument("--nproc", type=int, default=1, help="data-parallel processes on this machine (one per GPU "
                   "on CUDA); for several machines run it under torchrun instead (README)")
    _force(s)
    s.set_defaults(func=_train)


def _train(a: argparse.Namespace) -> None:
    from .train.pipeline import train

    print(train(a.subject, a.engine, a.output, minutes=a.minutes, steps=a.steps, device=a.device,
                overrides=a.set, force=a.force, nproc=a.nproc))


def _train_motion_args(sub) -> None:
    s = sub.add_parser("train-motion", help="train only the motion learners of a subject (MODEL/motion.pt)")
    s.add_argument("subject")
    s.add_argument("-o", "--output", required=True, help="model directory to add motion.pt to (created if missing)")
    _training(s, 3)
    _force(s)
    s.set_defaults(func=_train_motion)


def _train_motion(a: argparse.Namespace) -> None:
    from .train.pipeline import train_motion

    print(train_motion(a.subject, a.output, minutes=a.minutes, steps=a.steps, device=a.device, force=a.force))


def _say_args(sub) -> None:
    s = sub.add_parser("say", help="render the person saying an audio file or a text")
    s.add_argument("model")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--audio")
    g.add_argument("--text")
    s.add_argument("-o", "--output", required=True, help="mp4 to write")
    s.add_argument("--pose", default=None, metavar="audio|train|still|FILE",
                   help="head motion from the audio (default when the model has a motion learner), replay the "
                        "training poses (default otherwise), hold one, or a file of yaw pitch roll [tx ty tz] rows")
    s.add_argument("--lips", default=None, choices=["engine", "audio"],
                   help="the motion learner's mouth landmarks (default for engines that render from landmarks "
                        "when the model has motion.pt), or the engine's own audio → mouth")
    s.add_argument("--crop", action="store_true", help="write the subject's square crop instead of the source "
                   "video's own frame size")
    s.add_argument("--blink", default="auto", choices=["auto", "natural", "none"],
                   help="auto: the replayed frames' own eyes (natural blinks added where the video blinks under "
                        "8 times a minute, engines with eye control); natural: blinks every 2-6 s added; none: "
                        "eyes held open")
    s.add_argument("--eye", type=float, help="fixed eye openness, 0 closed … 1 open (overrides --blink)")
    s.add_argument("--background", help="an image to put behind the person (engines with a background plate)")
    _rendering(s)
    _force(s)
    s.set_defaults(func=_say)


def _say(a: argparse.Namespace) -> None:
    from .say.pipeline import say

    say(a.model, a.output, audio=a.audio, text=a.text, pose=a.pose, blink=a.blink, device=a.device,
        subject=a.subject, eye=a.eye, background=a.background, lips=a.lips, force=a.force, crop=a.crop,
        precision=a.precision)
    print(a.output)


def _serve_args(sub) -> None:
    s = sub.add_parser("serve", help="the person live in a browser (WebRTC) and for programs (WebSocket, HTTP)")
    s.add_argument("model")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    s.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    s.add_argument("--max-sessions", type=int, default=2, help="live viewers at once; more are refused")
    s.add_argument("--idle-seconds", type=float, default=6.0, help="length of the idle loop shown between answers")
    _rendering(s)
    s.set_defaults(func=_serve)


def _serve(a: argparse.Namespace) -> None:
    from .serve import ServeConfig, serve

    if a.max_sessions < 1:
        from .errors import InputError

        raise InputError("--max-sessions must be at least 1")
    serve(a.model, host=a.host, port=a.port, device=a.device, subject=a.subject, precision=a.precision,
          config=ServeConfig(max_sessions=a.max_sessions, idle_seconds=a.idle_seconds))


def _demo_args(sub) -> None:
    s = sub.add_parser("demo", help="synthesize, prepare, train and say: the whole pipeline, no data needed")
    s.add_argument("-o", "--output", default="demo")
    s.add_argument("--minutes", type=float, default=8.0, help="training budget")
    s.add_argument("--engine", default=None, help="engine to train (default: the one the benchmarks show best, "
                   "see the summary)")
    s.add_argument("--device", default="auto")
    _force(s)
    s.set_defaults(func=_demo)


def _demo(a: argparse.Namespace) -> None:
    from .demo import demo

    engine = {"engine": a.engine} if a.engine else {}  # default: the demo's own choice
    print(demo(a.output, minutes=a.minutes, device=a.device, force=a.force, **engine))


def _evaluate_args(sub) -> None:
    s = sub.add_parser("evaluate", help="metrics + HTML report: self-driven (MODEL_DIR) or cross-driven (--video)")
    s.add_argument("model_dir", nargs="?", metavar="MODEL_DIR",
                   help="trained model: render its held-out frames and compare with the real ones")
    s.add_argument("--video", help="a rendered video to judge against its driving speech (no ground truth)")
    s.add_argument("--audio", help="the driving speech (default: the video's own audio track)")
    s.add_argument("-o", "--output", help="report directory (default: VIDEO_STEM_report/ beside the video, "
                   "or MODEL_DIR/eval_SPLIT)")
    s.add_argument("--split", default="val", help="subject split to render (self-driven)")
    s.add_argument("--lips", default=None, choices=["engine", "audio", "tracked"],
                   help="self-driven: as say (the motion learner's landmarks where the engine can, by default), "
                        "the engine's own audio → mouth, or the held-out frames' own tracked mouths (the renderer "
                        "alone: an upper bound)")
    s.add_argument("--pose", default="tracked", choices=["tracked", "audio"],
                   help="self-driven: the held-out frames' own tracked head poses, or the motion learner's for "
                        "their audio (free-pose engines draw them; the mouth and sharpness metrics still hold, "
                        "pixel metrics then compare different poses)")
    s.add_argument("--device", default="auto")
    s.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    _force(s)
    s.set_defaults(func=_evaluate)


def _evaluate(a: argparse.Namespace) -> None:
    from pathlib import Path

    from .errors import InputError

    if (a.model_dir is None) == (a.video is None):
        raise InputError("give exactly one of MODEL_DIR (self-driven) or --video OUT.mp4 (cross-driven)")
    from .evaluate.cross import evaluate_video, format_metrics

    if a.model_dir is not None:
        from .evaluate.self_driven import evaluate_model

        out = Path(a.output) if a.output else Path(a.model_dir) / f"eval_{a.split}"
        print(format_metrics(evaluate_model(a.model_dir, split=a.split, report_dir=out, device=a.device,
                                              lips=a.lips, force=a.force, precision=a.precision,
                                              pose=a.pose)))
        print(out / "report.html")
        return

    video = Path(a.video)
    out = Path(a.output) if a.output else video.with_name(f"{video.stem}_report")
    metrics = evaluate_video(video, audio=a.audio, report_dir=out, force=a.force)
    print(format_metrics(metrics))
    print(out / "report.html")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talkinghead", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="also show the native libraries' log lines")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_prepare_args, _tts_args, _synth_args, _train_args, _train_motion_args, _say_args, _serve_args,
                _demo_args, _evaluate_args):
        add(sub)
    return p


def kept_after_interrupt(a: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind, per command (outputs appear only complete, under their final name)."""
    from pathlib import Path

    if a.command == "prepare":
        from .prepare.pipeline import partial_dir

        partial = partial_dir(Path(a.output))
        return (f"finished stages kept in {partial}; the same command resumes" if partial.is_dir()
                else "nothing written")
    if a.command in ("train", "train-motion"):
        from .train.pipeline import default_model_dir

        out = a.output or default_model_dir(a.subject, a.engine)
        return f"the last checkpoint is kept in {out}; the same command resumes"
    if a.command == "demo":
        return f"finished stages kept in {a.output}; the same command resumes"
    return f"nothing written to {a.output}" if getattr(a, "output", None) else "nothing written"


def main(argv: list[str] | None = None) -> int:
    from contextlib import nullcontext

    from .progress import native_logs_hidden

    args = build_parser().parse_args(argv)
    try:
        with nullcontext() if args.verbose else native_logs_hidden():
            args.func(args)
    except TalkingHeadError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the file system or a device said no: the user's to fix, not a bug
        print(f"error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {kept_after_interrupt(args)}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

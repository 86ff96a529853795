"""Progress bars with ETA (stderr), and a tiny stage timer for summary tables."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm


def quiet() -> bool:
    return os.environ.get("TALKINGHEAD_QUIET", "") not in ("", "0")


def bar(total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False, **kw) -> tqdm:
    """A tqdm bar on stderr with ETA; silent when TALKINGHEAD_QUIET=1 (or ``disable``)."""
    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                leave=False, disable=disable or quiet(), mininterval=0.5, **kw)


def info(msg: str) -> None:
    if not quiet():
        print(msg, file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


@contextmanager
def interrupts_deferred():
    """A Ctrl-C inside the block takes effect when it ends. For native set-up (importing mediapipe, building
    its graph): a KeyboardInterrupt raised in the middle of that is printed and swallowed by the C++ side or
    leaves a half-imported library that kills the process at exit, instead of reaching the CLI's one line.
    Does nothing outside the main thread (signals are only delivered there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if held:
        signal.raise_signal(signal.SIGINT)  # to the handler that was there (by default: KeyboardInterrupt now)


@contextmanager
def native_stderr_silenced():
    """Hide C++ log lines (mediapipe/TFLite write straight to fd 2) for the block.

    Python's own stderr is flushed first; the descriptor is restored after.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def native_logs_hidden():
    """For a whole command: C++ libraries' log lines (mediapipe, absl, TFLite, glog), which write straight to
    file descriptor 2, go to /dev/null, while Python's ``sys.stderr`` (progress bars, warnings, errors) keeps
    the terminal through a copy of the descriptor. Does nothing when ``sys.stderr`` is not descriptor 2
    (e.g. captured by a test)."""
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        real = False
    if not real:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    old = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=old.encoding, errors="backslashreplace")
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = old
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@dataclass
class StageTimer:
    """Collects (stage, seconds, note) rows and prints them as a table."""

    rows: list[tuple[str, float, str]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, note: str = ""):
        t0 = time.perf_counter()
        row = [name, 0.0, note]
        try:
            yield row
        finally:
            row[1] = time.perf_counter() - t0
            self.rows.append(tuple(row))

    def table(self) -> str:
        w = max([len(r[0]) for r in self.rows] + [5])
        lines = [f"{'stage':<{w}}  {'seconds':>8}  note", f"{'-' * w}  {'-' * 8}  ----"]
        for name, sec, note in self.rows:
            lines.append(f"{name:<{w}}  {sec:8.2f}  {note}")
        lines.append(f"{'total':<{w}}  {sum(r[1] for r in self.rows):8.2f}")
        return "\n".join(lines)

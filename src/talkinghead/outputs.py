"""Output paths: never destroy what talkinghead did not write.

Every command checks its ``-o`` before any work starts:

- a path that does not exist, or an empty directory: written;
- an earlier result of the same command (a directory holding that command's
  marker file, or a media file talkinghead wrote): resumed or replaced, as the
  command documents;
- anything else (the user's own file, a directory with other files in it):
  refused with one line. ``--force`` lets the command write its results *beside*
  the files of a foreign directory (never removing or replacing any of them),
  or replace a foreign file the user named. A file where a directory belongs,
  or the reverse, is refused even with ``--force``.

Files talkinghead writes carry a mark: mp4 containers the ``comment`` tag
``MARK`` (``io.video.VideoWriter``); a wav from ``tts`` its ``.phonemes.json``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import InputError
from .utils import ensure_writable_dir

__all__ = ["MARK", "output_dir", "output_file", "written_by_us", "install_dir"]

MARK = "written by talkinghead"


def written_by_us(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file talkinghead wrote (see the module notes)."""
    p = Path(path)
    if p.with_name(p.stem + ".phonemes.json").is_file():  # tts writes the two together
        return True
    try:
        import av

        with av.open(str(p)) as c:
            return str(c.metadata.get("comment", "")).startswith(MARK)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def output_dir(path: str | os.PathLike, markers: tuple[str, ...], force: bool, command: str) -> tuple[Path, bool]:
    """Check a directory output → (path, ours): ``ours`` when it holds one of ``markers`` (an earlier result
    of ``command``). Creates missing parents (not ``path`` itself); raises ``InputError`` for what must not be
    touched."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{p} is a file; {command} writes a directory there: choose another -o "
                         "(--force does not replace files that talkinghead did not write)")
    if p.is_dir() and any((p / m).exists() for m in markers):
        return p, True
    if p.is_dir() and any(p.iterdir()) and not force:
        raise InputError(f"{p} holds files talkinghead did not write; choose a new or empty -o, or pass --force "
                         "to write beside them (nothing there is removed)")
    ensure_writable_dir(p)
    return p, False


def output_file(path: str | os.PathLike, force: bool, command: str) -> Path:
    """Check a file output: an earlier talkinghead result is replaced, a foreign file only with ``force``."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a directory; {command} writes a file: give a file name with -o")
    if p.exists() and not force and not written_by_us(p):
        raise InputError(f"{p} exists and was not written by talkinghead; choose another -o, or pass --force "
                         "to replace it")
    return ensure_writable_dir(p)


def install_dir(src: Path, dst: Path, ours: bool) -> None:
    """Move the finished directory ``src`` to ``dst``: replacing ``dst`` when it is our own earlier result,
    else moving each entry in beside what is there (refusing, before moving any, to replace a foreign one)."""
    if ours or not dst.exists():
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(dst, old)
            os.replace(src, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(src, dst)
        return
    clash = sorted(e.name for e in src.iterdir() if (dst / e.name).exists())
    if clash:
        raise InputError(f"{dst} already holds {', '.join(clash[:3])}, which talkinghead did not write; "
                         f"the finished result is kept in {src}")
    for e in src.iterdir():
        os.replace(e, dst / e.name)
    src.rmdir()

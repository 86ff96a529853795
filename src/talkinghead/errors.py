"""One exception type for every user-facing failure.

The CLI prints ``error: <message>`` on one line and exits with ``exit_code``
(an ``OSError``, the file system's or a device's refusal: ``os_error_line``);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TalkingHeadError(Exception):
    """A bad input or an impossible request, explained in one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class InputError(TalkingHeadError):
    """The user's file or argument cannot be used."""


class FaceError(InputError):
    """No usable face (missing, too small, ambiguous)."""


def os_error_line(e: OSError) -> str:
    """One line for a failure of the file system or a device (unwritable, missing, full disk, …), naming the
    output a temporary file stood for (``utils.atomic_path`` writes ``.NAME.XXXX.tmpSUFFIX`` first)."""
    import re
    from pathlib import Path

    what = e.strerror or str(e) or type(e).__name__
    names, writing = [], False
    for n in (e.filename, e.filename2):
        if n:
            p = Path(str(n))
            m = re.fullmatch(r"\.(.+)\.[^.]+\.tmp(\..*)?", p.name)
            writing |= m is not None
            names.append(str(p.with_name(m[1] + (m[2] or ""))) if m else str(p))
    if not names:
        return what
    return f"{'cannot write ' if writing else ''}{' -> '.join(names)}: {what}"

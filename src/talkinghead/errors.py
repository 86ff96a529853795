"""One exception type for every user-facing failure.

The CLI prints ``error: <message>`` on one line and exits with ``exit_code``;
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

"""Errors a user can act on.

``SpecError``: the input is invalid (file, dotted field path, value, and the fix).
``InfeasibleError``: the input is valid but cannot run here (does not fit in memory,
a group wider than a fabric tier). Internal invariants use ``assert``.

Both print as one line of at most ``MAX_MESSAGE`` characters: a long file name keeps its
end, a long message its beginning (where the field and the fix are named).
"""

from __future__ import annotations

from typing import Any

# One line a person reads: the CLI prints "moesim: error: " before it.
MAX_MESSAGE = 400
MAX_FILE_SHOWN = 150


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with "..." where it was cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def clip_path(path: str, limit: int = MAX_FILE_SHOWN) -> str:
    """A path cut in front ("...tail") so the file name itself stays visible."""
    line = " ".join(str(path).split())
    return line if len(line) <= limit else "..." + line[-(limit - 3):]


def _line(message: str, file: str | None) -> str:
    if not file:
        return clip(message, MAX_MESSAGE)
    shown = clip_path(file)
    return f"{shown}: {clip(message, MAX_MESSAGE - len(shown) - 2)}"


class MoesimError(Exception):
    """Base of the errors moesim reports to users as one line."""


class SpecError(MoesimError, ValueError):
    """Invalid input. The message names the file, the dotted field path, the value and the fix."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.bare = message
        super().__init__(_line(message, file))

    def with_file(self, file: str) -> SpecError:
        """The same error, attributed to ``file`` (kept if a file was already named)."""
        if self.file:
            return self
        return SpecError(self.bare, file=file, field=self.field)


class InfeasibleError(MoesimError):
    """A valid input that is impossible here; ``reason`` is a short machine-readable tag."""

    def __init__(self, message: str, *, reason: str = "infeasible",
                 file: str | None = None) -> None:
        self.reason = reason
        self.file = file
        self.bare = message
        super().__init__(_line(message, file))

    def with_file(self, file: str) -> InfeasibleError:
        """The same error, attributed to ``file`` (kept if a file was already named)."""
        if self.file:
            return self
        return InfeasibleError(self.bare, reason=self.reason, file=file)


def require_pandas(what: str) -> Any:
    """The pandas module, or an ImportError saying ``what`` needs it and how to install it.

    pandas is optional: only the ``to_dataframe`` conveniences use it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(f"{what} needs pandas, which is not installed; install it with "
                          "'pip install pandas'") from None
    return pandas

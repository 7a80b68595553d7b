"""Errors a user can act on.

``SpecError``: the input is invalid (file, dotted field path, value, and the fix).
``InfeasibleError``: the input is valid but cannot run here (does not fit in memory,
a group wider than a fabric tier). Internal invariants use ``assert``.
"""

from __future__ import annotations

from typing import Any


class MoesimError(Exception):
    """Base of the errors moesim reports to users as one line."""


class SpecError(MoesimError, ValueError):
    """Invalid input. The message names the file, the dotted field path, the value and the fix."""

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.file = file
        self.field = field
        self.bare = message
        super().__init__(f"{file}: {message}" if file else message)

    def with_file(self, file: str) -> SpecError:
        """The same error, attributed to ``file`` (kept if a file was already named)."""
        if self.file:
            return self
        return SpecError(self.bare, file=file, field=self.field)


class InfeasibleError(MoesimError):
    """A valid input that is impossible here; ``reason`` is a short machine-readable tag."""

    def __init__(self, message: str, *, reason: str = "infeasible") -> None:
        self.reason = reason
        super().__init__(message)


def require_pandas(what: str) -> Any:
    """The pandas module, or an ImportError saying ``what`` needs it and how to install it.

    pandas is optional: only the ``to_dataframe`` conveniences use it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(f"{what} needs pandas, which is not installed; install it with "
                          "'pip install pandas'") from None
    return pandas

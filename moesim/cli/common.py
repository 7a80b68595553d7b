"""What every command shares: one-line user errors with exit code 2, JSON output, consoles."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from moesim.errors import InfeasibleError, MoesimError, SpecError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a field: PATH=VALUE (repeatable), e.g. parallelism.expert_parallel_degree=16"


def user_errors(func: F) -> F:
    """Turn SpecError / InfeasibleError into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (SpecError, InfeasibleError) as exc:
            fail(str(exc))
        except MoesimError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            print("moesim: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def fail(message: str, code: int = 2) -> None:
    line = " ".join(message.split())
    print(f"moesim: error: {line}", file=sys.stderr)
    raise typer.Exit(code)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n")


def _default(o: Any) -> Any:
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")

"""What every command shares: one-line errors at the boundary, JSON output, consoles.

Every exception a user's input or environment can cause ends here as one line on stderr:
``SpecError`` / ``InfeasibleError`` (exit 2), an OS error such as a read-only or full output
folder (exit 2, naming the path), running out of memory (exit 2), and Click's option errors
(exit 2, see :class:`OneLineGroup`). Anything else is a bug in moesim: one line saying so, exit
70 (EX_SOFTWARE). ``moesim --debug ...`` re-raises instead, with the traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import errno
import functools
import gc
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console, ConsoleDimensions
from typer.core import TyperGroup

from moesim.errors import MAX_MESSAGE, InfeasibleError, MoesimError, SpecError, clip, clip_path

# Piped or redirected output is as wide as its longest line (tables are never cut at 80
# columns or wrapped); JSON (--json) is there for programs.
PIPE_WIDTH = 1000


class WideWhenPiped(Console):
    """A rich Console that, writing to no terminal, lays out PIPE_WIDTH columns (rich's
    default is 80, which cuts table cells to "12.…")."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and "COLUMNS" not in os.environ:
            return ConsoleDimensions(PIPE_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = WideWhenPiped()
err_console = WideWhenPiped(stderr=True)
# For text that holds user strings (scenario names, paths): printed as is, never as markup
# (a name such as "[/]" would make rich raise).
plain_console = WideWhenPiped(markup=False, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

SET_HELP = "Override a field: PATH=VALUE (repeatable), e.g. parallelism.expert_parallel_degree=16"

# The Click that typer runs on: its vendored copy (typer >= 0.2x) or the click package.
_CLICK_EXCEPTIONS = sys.modules[typer.BadParameter.__module__]
ClickException = _CLICK_EXCEPTIONS.ClickException
_get_current_context = importlib.import_module(
    _CLICK_EXCEPTIONS.__name__.rsplit(".", 1)[0] + ".globals").get_current_context

EXIT_USER = 2
# Valid input, impossible here: the layout does not fit in memory (run, memory), every
# point of a sweep is infeasible.
EXIT_INFEASIBLE = 3
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: moesim itself failed


def debug_enabled() -> bool:
    """Whether ``moesim --debug`` was given (read from the running Click context)."""
    ctx = _get_current_context(silent=True)
    if ctx is None:
        return bool(os.environ.get("MOESIM_DEBUG"))
    return bool(ctx.find_root().params.get("debug")) or bool(os.environ.get("MOESIM_DEBUG"))


def user_errors(func: F) -> F:
    """Turn every error a user can cause into one line on stderr (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, ClickException):
            raise
        except KeyboardInterrupt:
            print("moesim: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BaseException as exc:  # noqa: BLE001 - the boundary: everything becomes a line
            if debug_enabled() or isinstance(exc, (SystemExit, GeneratorExit)):
                raise
            message, code = describe(exc)
            if code is None:
                raise typer.Exit(1) from None  # a closed pipe: nothing more to say
            fail(message, code)

    return wrapper  # type: ignore[return-value]


def describe(exc: BaseException) -> tuple[str, int | None]:
    """(one-line message, exit code) for any exception; code None for a closed stdout pipe."""
    if isinstance(exc, (SpecError, InfeasibleError, MoesimError)):
        return str(exc), EXIT_USER
    if isinstance(exc, OSError):
        if exc.errno == errno.EPIPE:
            return "", None
        return os_error_line(exc), EXIT_USER
    if isinstance(exc, MemoryError):
        return ("ran out of memory; the scenario needs more than this machine has (lower the "
                "micro-batches, EP degree or experts; docs/specs.md, Limits)"), EXIT_USER
    if isinstance(exc, RecursionError):
        return "input nested too deeply for moesim to process", EXIT_USER
    text = clip(str(exc), 200)
    return (f"internal error: {type(exc).__name__}: {text} (a bug in moesim, not in your "
            "input; rerun with `moesim --debug ...` for the traceback and report it)",
            EXIT_INTERNAL)


def os_error_line(exc: OSError) -> str:
    """An OS error as one line: the path, what the OS said, and what to do."""
    what = exc.strerror or type(exc).__name__
    path = exc.filename if exc.filename is not None else None
    hint = {errno.ENOSPC: "free some space or choose another --out",
            errno.EROFS: "choose a writable --out folder",
            errno.EACCES: "check its permissions or choose another --out",
            errno.EPERM: "check its permissions or choose another --out",
            errno.ENAMETOOLONG: "use a shorter path"}.get(exc.errno or 0, "")
    where = f"{clip_path(str(path))}: " if path else ""
    return f"{where}{what}" + (f"; {hint}" if hint else "")


@contextlib.contextmanager
def attributed(path: Any) -> Iterator[None]:
    """Errors raised inside without a file are attributed to ``path`` (the scenario file)."""
    try:
        yield
    except (SpecError, InfeasibleError) as exc:
        raise exc.with_file(str(path)) from None


Update = Callable[..., None]


def progress_shown() -> bool:
    """Progress bars go to stderr, and only when it is a terminal (never into a pipe, a log
    file or CI's output)."""
    return err_console.is_terminal


@contextlib.contextmanager
def progress(description: str, total: float | None = None) -> Iterator[Update]:
    """A transient rich progress bar on stderr while the block runs; yields
    ``update(completed=, total=, description=, advance=)``. Silent (a no-op update) when
    stderr is not a terminal; a total of None draws a pulsing bar with the elapsed time."""
    if not progress_shown():
        yield lambda **_kw: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console,
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda **kw: bar.update(task, **kw)


def choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """An Enum of ``values`` for a typer option: --help lists them, the shell completes
    them, and anything else is a one-line usage error (see :func:`usage_line`)."""
    return enum.Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


FidelityChoice = choices("FidelityChoice", ("des", "analytic"))
ObjectiveChoice = choices("ObjectiveChoice", ("throughput", "cost"))


def value_of(choice: Any) -> str:
    """The plain string of an Enum choice (or of a string)."""
    return str(getattr(choice, "value", choice))


def check_choice(command: str, option: str, value: str, valid: tuple[str, ...]) -> None:
    """An option that takes one of ``valid``: anything else is a usage error, worded as Click's."""
    if value not in valid:
        shown = repr(value) if len(value) <= 40 else repr(value[:37] + "...")
        raise SpecError(f"moesim {command}: {option} {shown} is not valid; valid: "
                        f"{', '.join(valid)}; see `moesim {command} --help`", field=option)


def fail(message: str, code: int = EXIT_USER) -> None:
    print(f"moesim: error: {clip(message, MAX_MESSAGE)}", file=sys.stderr)
    raise typer.Exit(code)


# Young objects between two runs of the cyclic garbage collector while a command runs (the
# interpreter's default is 700); the older generations are collected 20 times as rarely as
# the default too.
COMMAND_GC_THRESHOLD = (20_000, 20, 20)


@contextlib.contextmanager
def command_gc() -> Iterator[None]:
    """The cyclic garbage collector as a command wants it. A run allocates about a million
    container objects and reference counting frees nearly all of them; at the default
    thresholds the collector ran ~240 times in ``moesim run`` (one full pass over every
    object), 60 ms of its 0.8 s, finding almost nothing. Cyclic garbage waits at most
    COMMAND_GC_THRESHOLD[0] allocations longer."""
    old = gc.get_threshold()
    gc.set_threshold(*COMMAND_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*old)


def freeze_at_exit() -> None:
    """At interpreter exit, skip the collector's last pass over every object (40 ms after a
    run; the process's memory goes back to the OS whole): gc.freeze() from an exit hook,
    registered once."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def one_blas_thread() -> None:
    """OpenBLAS on one thread unless the environment says otherwise (read when numpy loads,
    so only before it is imported): moesim's matrices are small (EP x EP, ranks x links), and
    an idle OpenBLAS thread spins on another core after every call (0.1 s of CPU in a
    `moesim run` of the default scenario; the same numbers, one thread computes each
    element either way). Sweep workers inherit it: they are the parallelism."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


class OneLineGroup(TyperGroup):
    """The root command: Click's usage and option errors as one line (not Typer's box)."""

    def main(self, args: Any = None, prog_name: str | None = None,  # type: ignore[override]
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        if standalone_mode:
            freeze_at_exit()
        one_blas_thread()
        try:
            with command_gc():
                rv = super().main(args=args, prog_name=prog_name or "moesim",
                                  complete_var=complete_var, standalone_mode=False, **extra)
        except ClickException as exc:
            if not standalone_mode:
                raise
            print(f"moesim: error: {usage_line(exc)}", file=sys.stderr)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            print("moesim: interrupted", file=sys.stderr)
            sys.exit(130)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def usage_line(exc: Any) -> str:
    """``moesim CMD: <what Click said>; see moesim CMD --help``, one line."""
    ctx = getattr(exc, "ctx", None)
    parts = ctx.command_path.split()[1:] if ctx is not None else []
    cmd = " ".join(["moesim", *parts])
    what = str(exc.format_message()).strip().rstrip(".")
    # Click's choice error, worded as moesim's: "'x' is not valid; valid: a, b"
    m = re.search(r"('[^']*') is not one of (.*)$", what)
    if m:
        valid = ", ".join(v.strip().strip("'") for v in m[2].split(","))
        head = what[:m.start()].replace("Value error, ", "")
        what = head + f"{m[1]} is not valid; valid: {valid}"
    return clip(f"{cmd}: {what}; see `{cmd} --help`", MAX_MESSAGE)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n")


def _default(o: Any) -> Any:
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")

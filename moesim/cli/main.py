"""The ``moesim`` console script. Subcommand modules in this package register themselves."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import typer
from rich.markup import escape

import moesim
from moesim.cli.common import (
    SET_HELP,
    OneLineGroup,
    console,
    plain_console,
    print_json,
    user_errors,
)
from moesim.errors import SpecError
from moesim.io import write_text_atomic

app = typer.Typer(
    cls=OneLineGroup,
    name="moesim",
    help="Simulate and plan Mixture-of-Experts training on real clusters.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"moesim {moesim.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug",
                               help="Show the Python traceback of an error instead of one line."),
) -> None:
    """moesim: step time, throughput and memory of MoE training before you rent the cluster."""


@app.command()
@user_errors
def validate(
    files: list[Path] = typer.Argument(..., help="Topology, model, scenario or sweep YAML files."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
) -> None:
    """Validate spec files; the first bad one is reported as one line (exit 2).

    ``--set`` overrides apply to every file given (scenario files resolve ``topology.*`` and
    ``model.*`` paths into the files they reference)."""
    rows = []
    for f in files:
        kind = _validate_one(f, sets)
        rows.append({"file": str(f), "kind": kind, "ok": True})
    if as_json:
        print_json(rows)
    else:
        for r in rows:
            console.print(f"[green]ok[/green] {escape(r['kind']):<9} {escape(r['file'])}")


def _validate_one(path: Path, sets: list[str]) -> str:
    """A spec file through the specs layer; a published-measurement case through moesim.check."""
    from moesim.specs.loader import read_yaml, validate_file

    data = read_yaml(path)
    if isinstance(data, dict) and "case" in data and "workload" not in data:
        from moesim.check.cases import load_case

        load_case(path)
        return f"case:{str(data['case'])[:40]}"
    return validate_file(path, sets, data=data)[0]


@app.command()
@user_errors
def schema(out: Path = typer.Option(Path("schema"), "--out", help="Folder for the JSON Schemas.")) -> None:
    """Write the JSON Schema of every spec (for editor completion)."""
    from moesim.specs.jsonschema import all_schemas

    for name, sch in all_schemas().items():
        write_text_atomic(out / f"{name}.schema.json", json.dumps(sch, indent=2, sort_keys=True))
        plain_console.print(f"wrote {out / f'{name}.schema.json'}")


def _register_subcommands() -> None:
    """Import every ``moesim.cli.*`` module that defines ``register(app)``, in name order."""
    import moesim.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name in ("main", "common"):
            continue
        mod = importlib.import_module(f"moesim.cli.{info.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(app)


_register_subcommands()

__all__ = ["app", "SpecError"]

"""``moesim report RESULT.json --out DIR``: re-render a saved result without simulating."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from moesim.cli.common import plain_console, user_errors
from moesim.errors import SpecError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from moesim.results.schema import SimulationResult


def load_result(path: Path) -> SimulationResult:
    """Read a result.json; a missing or invalid file is a SpecError naming the file."""
    from pydantic import ValidationError

    from moesim.results.schema import SimulationResult

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the result: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise SpecError("not a moesim result: not UTF-8 text; expected the result.json that "
                        "`moesim run` writes", file=str(path)) from None
    try:
        return SimulationResult.from_json(text)
    except ValidationError as exc:
        raise _not_a_result(exc, path, "result", "moesim run") from None


def _not_a_result(exc: ValidationError, path: Path, what: str, command: str) -> SpecError:
    """One line for a result file that does not validate: the first bad field, where the
    file's keys are shown only when they look like field names."""
    from moesim.specs.yamlsafe import shown_key

    err = exc.errors()[0]
    where = ".".join(str(x) if isinstance(x, int) else shown_key(x).strip("'")
                     for x in err["loc"]) or "(top level)"
    return SpecError(f"not a moesim {what}: {where}: {err['msg']}; expected the result.json "
                     f"that `{command}` writes", file=str(path))


def _serving_result(path: Path):  # noqa: ANN202
    """The ServingResult in ``path`` when it is one (``"kind": "serving"``), else None."""
    import json

    from pydantic import ValidationError

    from moesim.results.serving import ServingResult

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None  # load_result says what is wrong
    if not isinstance(data, dict) or data.get("kind") != "serving":
        return None
    try:
        return ServingResult.model_validate(data)
    except ValidationError as exc:
        raise _not_a_result(exc, path, "serving result", "moesim serve") from None


def report(
    result_file: Path = typer.Argument(..., help="A result.json written by `moesim run`."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: the result's folder)."),
) -> None:
    """Re-render report.html, summary.csv and trace.json from a saved result (a serving
    result: report.html, summary.csv, requests.csv, iterations.csv)."""
    serving = _serving_result(result_file)
    if serving is not None:  # a serving run's result.json (moesim serve)
        from moesim.report.serving import print_serving_summary, write_serving_report

        paths = write_serving_report(serving, out if out is not None else result_file.parent)
        print_serving_summary(serving, plain_console)
        for key, path in paths.items():
            plain_console.print(f"wrote {key:<7} {path}")
        return
    from moesim.report import print_summary, write_report

    result = load_result(result_file)
    paths = write_report(result, out if out is not None else result_file.parent)
    print_summary(result, plain_console)
    for key, path in paths.items():
        plain_console.print(f"wrote {key:<7} {path}")


def register(app: typer.Typer) -> None:
    app.command("report")(user_errors(report))

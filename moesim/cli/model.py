"""``moesim model import``: a Hugging Face config.json or Megatron arguments as moesim YAML."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from moesim.cli.common import console, user_errors

model_app = typer.Typer(help="Bring models in from other tools.", no_args_is_help=True)


@model_app.command("import")
@user_errors
def import_(
    config: Path = typer.Argument(..., help="A Hugging Face config.json, or Megatron-LM model "
                                  "arguments (an argument list, or a JSON/YAML mapping)."),
    out: Path | None = typer.Option(None, "--out", help="YAML file to write (default: stdout)."),
    name: str | None = typer.Option(None, "--name", help="Model name (default: the folder or "
                                    "file name)."),
    ignore: list[str] = typer.Option([], "--ignore", help="A Hugging Face field to skip although "
                                     "moesim does not know it (repeatable)."),
) -> None:
    """Convert a model config to moesim's model YAML, citing its source in a header comment.

    Families: Mixtral, DeepSeek-V2/V3 and Kimi-K2, Qwen2-MoE, Qwen3-MoE, GPT-OSS, Llama 4,
    GLM-4.5 (MoE), and dense Llama, Qwen2 and Qwen3. A scenario can also name the file
    directly: ``model: hf:path/to/config.json``."""
    from moesim.io import write_text_atomic
    from moesim.specs.hf import import_model

    imported = import_model(config, name=name, ignore=ignore)
    text = imported.to_yaml()
    if out is None:
        sys.stdout.write(text)
        for note in imported.notes:
            typer.echo(f"note: {note}", err=True)
        return
    write_text_atomic(out, text)
    s = imported.spec
    console.print(f"wrote {out}: {s.name} ({imported.architecture}), "
                  f"{s.total_params / 1e9:,.2f}B parameters, {s.active_params / 1e9:,.2f}B "
                  f"active; {len(imported.notes)} notes in its header", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")

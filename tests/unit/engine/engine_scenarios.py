"""The Mixtral scenario the engine tests build on (a uniquely named module: importing
``conftest`` by name picks whichever conftest was imported first)."""

from __future__ import annotations

from pathlib import Path

from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"


def scenario(*sets: str):
    """The Mixtral scenario with overrides (balanced routing unless overridden)."""
    return load_scenario(MIXTRAL, ("routing.load.kind=balanced",) + sets)

"""Scenario loaders shared by the memory tests (the shipped scenario files)."""

from __future__ import annotations

from pathlib import Path

from moesim.specs.loader import load_scenario
from moesim.specs.scenario import ScenarioSpec

ROOT = Path(__file__).resolve().parents[3]
MIXTRAL = ROOT / "scenarios/mixtral-8x7b-64xh100.yaml"
DSV3 = ROOT / "scenarios/deepseek-v3-2048xh800.yaml"
QWEN3 = ROOT / "scenarios/qwen3-235b-a22b-256xh100.yaml"


def mixtral(*sets: str) -> ScenarioSpec:
    """Mixtral 8x7B on 64 H100, TP1 EP8 PP4 VPP8, ZeRO-1 (with ``--set`` overrides)."""
    return load_scenario(MIXTRAL, sets)

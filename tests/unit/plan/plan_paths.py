"""Paths and evaluator names the plan tests share (a uniquely named module: importing
``conftest`` by name picks whichever conftest was imported first)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# plan_fakes is imported by dotted name (``plan_fakes:evaluate``), also in worker processes.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
FAKE = "plan_fakes:evaluate"
FAKE_MEMORY = "plan_fakes:memory"

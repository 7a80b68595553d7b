"""Importing the CLI (what ``moesim --help`` does) imports none of the heavy packages.

Every subcommand module is imported to build the root help, so each imports the engine,
the planner, the report (plotly), numpy-heavy models etc. inside the commands that use them;
the names their options need at import time come from :mod:`moesim.constants`. A structural
test, not a timing test: it names the module that leaked in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("moesim.engine", "moesim.plan", "moesim.report", "moesim.compute", "moesim.network",
         "moesim.cluster", "moesim.routing", "moesim.memory", "plotly", "networkx")


def _imported_by(statement: str, prefixes: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules of ``prefixes`` a fresh interpreter holds after running ``statement``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    code = (f"{statement}\nimport json, sys; sys.stdout.flush(); print(json.dumps(sorted("
            f"m for m in sys.modules if m.startswith({prefixes!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_imports_no_heavy_module() -> None:
    assert _imported_by("import moesim.cli.main") == []


def test_help_imports_no_spec_class_and_no_heavy_module() -> None:
    """`moesim --help` builds every subcommand's options: no engine, no pydantic specs
    (moesim.specs.bounds, plain numbers, is all it reads of moesim.specs)."""
    help_ = "from moesim.cli.main import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass"
    assert _imported_by(help_, (*HEAVY, "pydantic", "moesim.specs.")) == ["moesim.specs.bounds"]


def test_the_constants_match_their_packages() -> None:
    """The packages re-export moesim.constants' names (one definition each)."""
    import moesim.constants as c
    from moesim.cluster import PLACEMENTS
    from moesim.memory import TERMS
    from moesim.network import OPS
    from moesim.plan.evaluate import ENGINE_EVALUATOR, ENGINE_MEMORY, PLAN_EVALUATOR
    from moesim.plan.executors import MAX_WORKERS
    from moesim.plan.search import DEFAULT_ANALYTIC_BUDGET
    from moesim.routing.step import DEFAULT_DRAWS_PER_LAYER

    assert (OPS, PLACEMENTS, TERMS, DEFAULT_DRAWS_PER_LAYER, MAX_WORKERS,
            DEFAULT_ANALYTIC_BUDGET, ENGINE_EVALUATOR, ENGINE_MEMORY, PLAN_EVALUATOR) == (
        c.OPS, c.PLACEMENTS, c.TERMS, c.DEFAULT_DRAWS_PER_LAYER, c.MAX_WORKERS,
        c.DEFAULT_ANALYTIC_BUDGET, c.ENGINE_EVALUATOR, c.ENGINE_MEMORY, c.PLAN_EVALUATOR)

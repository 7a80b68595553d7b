"""DESIGN.md's layers: a lower layer never imports a higher one.

The allowed edges below are the design's data path (specs -> cluster -> costs -> program ->
engine -> results -> report / plan), read from the table of layers. ``moesim.results.schema`` is
the frozen result data every layer may build (memory fills its rank-class records); the rest
of ``moesim.results`` (the builder, FLOP counting) sits above the engine's inputs.
"""

from __future__ import annotations

import ast
from pathlib import Path

# leaf modules; moesim.constants imports nothing (the names the CLI needs to build its
# options, each owned and re-exported by its package)
BASE = {"units", "errors", "io", "shipped", "_version", "_build_version", "constants"}
ALLOWED: dict[str, set[str]] = {
    "specs": set(),
    "cluster": {"specs"},
    "network": {"specs", "cluster"},
    "compute": {"specs"},
    "routing": {"specs"},
    "memory": {"specs", "results.schema"},
    "program": {"specs"},
    "results": {"specs", "results.schema", "compute"},  # provenance names the kernel table
    "engine": {"specs", "cluster", "network", "compute", "routing", "memory", "program",
               "results", "results.schema"},
    "serving": {"specs", "cluster", "network", "compute", "routing", "memory", "program",
                "engine", "results", "results.schema"},
    "report": {"results", "results.schema"},
    "profiling": {"compute"},
    "goodput": {"specs", "engine", "memory", "results", "results.schema"},
    "plan": {"specs", "engine", "memory", "report", "results", "results.schema", "routing",
             "goodput", "serving"},
    "check": {"specs", "cluster", "network", "compute", "engine", "report", "results",
              "results.schema", "memory", "routing", "serving"},
    "cli": None,  # the top: may import anything
    "api": None,  # the Python API (moesim.api), a top like the command line
}


def _targets(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith("moesim.") and node.value.count(" ") == 0):
            names = [node.value]  # importlib.import_module("moesim.x") counts too
        for name in names:
            parts = name.split(".")
            if parts[0] != "moesim" or len(parts) < 2:
                continue
            out.add("results.schema" if parts[1:3] == ["results", "schema"] else parts[1])
    return out


def test_no_layer_imports_a_higher_one(root: Path) -> None:
    bad = []
    for path in sorted((root / "moesim").rglob("*.py")):
        rel = path.relative_to(root / "moesim").parts
        layer = rel[0].removesuffix(".py")
        if layer in BASE or layer == "__init__":
            continue
        allowed = ALLOWED.get(layer, set())
        if allowed is None:
            continue
        for tgt in _targets(ast.parse(path.read_text(encoding="utf-8"))) - {layer} - BASE:
            if tgt not in allowed:
                bad.append(f"{path.relative_to(root)} imports moesim.{tgt}")
    assert not bad, "\n".join(bad)


def test_every_package_has_a_place(root: Path) -> None:
    """A new package must be placed in the layer table above before it can land."""
    pkgs = {p.name for p in (root / "moesim").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert pkgs <= set(ALLOWED), sorted(pkgs - set(ALLOWED))


def test_checker_sees_a_violation() -> None:
    tree = ast.parse("from moesim.engine import simulate\nimport importlib\n"
                     "importlib.import_module('moesim.plan')\n")
    assert _targets(tree) == {"engine", "plan"}

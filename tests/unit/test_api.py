"""The Python API: ``import moesim`` names, ``to_dataframe``, and the quickstart example."""

from __future__ import annotations

import importlib.util
import inspect
import runpy
import sys
from pathlib import Path

import pytest

import moesim
from moesim.results.schema import SimulationResult
from moesim.units import GIB


def _fixture_result() -> SimulationResult:
    path = Path(__file__).parent / "report" / "report_fixture_result.py"
    spec = importlib.util.spec_from_file_location("report_fixture_result", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_result()


def test_every_public_name_resolves_and_is_documented():
    for name in moesim.__all__:
        obj = getattr(moesim, name)
        if name != "__version__":
            assert inspect.getdoc(obj), f"moesim.{name} has no docstring"
    for name in ("load_scenario", "simulate", "plan", "SimulationResult", "PlanResult"):
        assert name in moesim.__all__ and name in dir(moesim)
    with pytest.raises(AttributeError):
        moesim.no_such_name  # noqa: B018


def test_plan_is_the_package_and_the_search():
    import moesim.plan.search

    assert callable(moesim.plan) and moesim.plan.search.plan is moesim.api.plan
    assert "analytic_budget" in inspect.signature(moesim.api.plan).parameters


def test_simulate_applies_sets_to_a_path_and_to_a_spec(root):
    path = root / "scenarios/default.yaml"
    a = moesim.simulate(path, fidelity="analytic", sets={"parallelism.expert_parallel_degree": 4})
    spec = moesim.load_scenario(path)
    b = moesim.simulate(spec, fidelity="analytic", sets=["parallelism.expert_parallel_degree=4"])
    assert a.parallelism["ep"] == b.parallelism["ep"] == 4
    assert a.step_time_s == b.step_time_s


def test_flat_metrics_by_hand():
    m = _fixture_result().flat_metrics()
    assert m["step_time_s"] == 0.5 and m["breakdown.compute.attention_s"] == 0.16
    # fixture: pp0 peaks at 40 + 10 + 20 = 70 GiB of 80, pp1 at 62 GiB
    assert m["peak_bytes"] == 70 * GIB and m["min_headroom_bytes"] == 10 * GIB
    parts = sum(v for k, v in m.items() if k.startswith("breakdown."))
    assert parts == pytest.approx(0.5)  # the breakdown sums to the step


def test_to_dataframe_one_row():
    pd = pytest.importorskip("pandas")
    frame = _fixture_result().to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 1
    assert frame.loc[0, "mfu"] == pytest.approx(0.4)


def test_to_dataframe_without_pandas_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"to_dataframe\(\) needs pandas.*pip install pandas"):
        _fixture_result().to_dataframe()


def test_quickstart_example_runs(root, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", ["quickstart.py", str(tmp_path / "out")])
    runpy.run_path(str(root / "docs/examples/quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "default 64 devices, mixtral-8x7b" in out and "layouts considered" in out
    assert (tmp_path / "out" / "report.html").exists()

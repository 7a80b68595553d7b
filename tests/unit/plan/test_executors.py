from __future__ import annotations

from pathlib import Path

import pytest
from plan_paths import FAKE, HERE

from moesim.errors import SpecError
from moesim.plan.executors import LocalExecutor, SerialExecutor, make_executor
from moesim.plan.sweep import run_sweep
from moesim.specs.sweep import load_sweep


def _square(x: int) -> int:
    return x * x


def test_local_pool_returns_every_result_once() -> None:
    ex = LocalExecutor(2)
    try:
        got = sorted(ex.run(_square, range(50)))
    finally:
        ex.close()
    assert got == [x * x for x in range(50)]


def test_make_executor() -> None:
    assert isinstance(make_executor("local", workers=1), SerialExecutor)
    assert isinstance(make_executor("local", workers=2), LocalExecutor)
    with pytest.raises(SpecError, match="valid: local, ray"):
        make_executor("slurm")


def _strip(records: list[dict]) -> list[tuple]:
    return [(r["point_id"], r["status"], r["reason"], r["metrics"]) for r in records]


def test_process_pool_equals_serial(mixtral_sweep: Path, tmp_path: Path) -> None:
    spec = load_sweep(mixtral_sweep)
    serial = run_sweep(spec, mixtral_sweep, tmp_path / "a", evaluator=FAKE)
    pooled = run_sweep(spec, mixtral_sweep, tmp_path / "b", evaluator=FAKE,
                       executor=LocalExecutor(2))
    assert _strip(pooled.records) == _strip(serial.records)


def test_ray_equals_local_point_for_point(mixtral_sweep: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from moesim.plan.executors import RayExecutor

    spec = load_sweep(mixtral_sweep)
    local = run_sweep(spec, mixtral_sweep, tmp_path / "local", evaluator=FAKE,
                      executor=LocalExecutor(2))
    # Ray workers do not inherit sys.path: give them the folder of plan_fakes.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(HERE)}})
    try:
        on_ray = run_sweep(spec, mixtral_sweep, tmp_path / "ray", evaluator=FAKE,
                           executor=RayExecutor())
    finally:
        ray.shutdown()
    assert len(on_ray.records) == 10
    assert _strip(on_ray.records) == _strip(local.records)

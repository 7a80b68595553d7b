"""The torch harness end to end on this machine's CPU, with a tiny grid (needs torch)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from moesim.compute import KernelCostModel, load_calibration, save_calibration  # noqa: E402
from moesim.compute.calibration import calibration_json_schema  # noqa: E402
from moesim.compute.fit import accelerator_from_table  # noqa: E402
from moesim.profiling import default_grid, run_profile  # noqa: E402
from moesim.profiling.grids import AttentionCase, GroupedCase  # noqa: E402


def _tiny():
    return default_grid("cpu", quick=True).smaller(
        gemm_m=(16, 64), gemm_n=(64, 128), gemm_k=(64,),
        grouped=(GroupedCase(4, 128, 64, 64),),
        attention=(AttentionCase(1, 128, 4, 2, 32), AttentionCase(1, 128, 4, 2, 32, backward=True)),
        memory_bytes=(2**14,), memory_kinds=("elementwise", "permute", "optimizer"),
        collective_bytes=(2**12,), warmup=1, repeats=2, min_sample_s=0.0005)


@pytest.mark.torch
def test_tiny_profile_round_trip(tmp_path):
    table = run_profile("cpu", "fp32", grid=_tiny(), name="tiny")
    path = save_calibration(table, tmp_path / "tiny.json")
    data = json.loads(path.read_text())
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, calibration_json_schema())
    back = load_calibration(path)
    assert back == table
    assert len(back.gemm) == 4 and back.gemm[0].timing.median_s > 0
    assert back.grouped_gemm[0].method in ("grouped_mm", "loop")
    assert {p.backward for p in back.attention} == {False, True}
    assert {c.op for c in back.collectives} == {"all_reduce", "all_gather", "reduce_scatter",
                                                "all_to_all"}
    assert all(c.backend == "gloo" and c.world_size == 2 for c in back.collectives)
    assert back.environment.device_kind == "cpu"
    assert back.environment.torch_version == torch.__version__
    # The measured table drives the cost model: exact at a measured shape.
    acc = accelerator_from_table(back)
    model = KernelCostModel(acc, "fp32", back)
    p = back.gemm[0]
    assert back.statistic == "min"
    assert model.gemm(p.m, p.n, p.k).time_s == pytest.approx(p.timing.min_s, rel=1e-12)


@pytest.mark.torch
def test_fp8_on_cpu_is_a_spec_error():
    from moesim.errors import SpecError

    with pytest.raises(SpecError, match="fp8"):
        run_profile("cpu", "fp8", grid=_tiny())

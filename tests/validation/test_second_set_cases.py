"""The second set of published cases (2026-12): every file loads and is checked, and the new
case kind (grouped GEMM) agrees with numbers derived by hand from the formulas in its module.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.check import load_case, run_check
from moesim.errors import SpecError
from moesim.specs.describe import as_gbyte_per_s, tier_summaries
from moesim.specs.loader import load_topology

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "scenarios" / "published"

SECOND_SET = [
    "modelzoo-mixtral8x22b-h100-128gpu-dropless.yaml",
    "modelzoo-mixtral8x22b-h100-128gpu-balanced.yaml",
    "modelzoo-mixtral8x22b-h100-128gpu-fp8-balanced.yaml",
    "modelzoo-mixtral8x22b-h100-128gpu-capacity1.yaml",
    "bridge-dsv3-b200-256gpu.yaml",
    "bridge-dsv3-gb200-256gpu.yaml",
    "bridge-qwen3-30b-gb300-8gpu.yaml",
    "bridge-qwen3-30b-gb200-8gpu.yaml",
    "nemo-mixtral8x7b-gb200-64gpu.yaml",
    "nemo-mixtral8x7b-b200-64gpu.yaml",
    "mamf-h100-fp8.yaml",
    "mamf-b200-bf16.yaml",
    "mamf-gb200-bf16.yaml",
    "deepgemm-fp8-h800.yaml",
    "deepgemm-fp8-h800-grouped.yaml",
    "mleng-b200-1node-vs-4node-allreduce.yaml",
]


@pytest.fixture(scope="module")
def rows():
    report = run_check([PUBLISHED / f for f in SECOND_SET], fidelity="analytic")
    return report.rows


def test_every_second_set_file_is_checked(rows) -> None:
    checked = {Path(r.file).name for r in rows}
    assert checked == set(SECOND_SET)
    assert all(r.predicted > 0 and r.published > 0 for r in rows)


def _row(rows, case: str, label: str):
    (row,) = [r for r in rows if r.case == case and r.label == label]
    return row


# --- grouped GEMM -------------------------------------------------------------------------

def test_grouped_gemm_point_is_the_roofline_by_hand(rows) -> None:
    # DeepGEMM contiguous 4 x 8192, N 4096, K 7168, FP8 on H800 (moesim.compute.roofline):
    # tiles = 4 x ceil(8192/128) x ceil(4096/128) = 8192 on 132 SMs, no split-K (8192 > 132),
    # waves = ceil(8192/132) = 63, utilization = 8192 x 128 x 128 / (63 x 132 x 128 x 128);
    # compute = 2 x 32768 x 4096 x 7168 / (1978.9e12 x 0.709 x util); bytes (1 B per element)
    # = 32768 x 7168 + 4 x 7168 x 4096 + 32768 x 4096 at 3350e9 x 0.85 is shorter; + 4 us launch.
    acc = load_topology(ROOT / "topologies" / "h800-deepseek-2048.yaml").accelerator
    flops = 2.0 * 4 * 8192 * 4096 * 7168
    util = 8192 / (63 * 132)
    compute = flops / (acc.fp8_dense_tflops * 1e12 * acc.fp8_gemm_efficiency * util)
    memory = (32768 * 7168 + 4 * 7168 * 4096 + 32768 * 4096) / (3350e9 * 0.85)
    assert compute > memory
    expected = flops / (compute + acc.kernel_launch_us * 1e-6) / 1e12
    row = _row(rows, "deepgemm-fp8-h800-grouped", "contiguous 4x8192 n4096 k7168")
    assert row.kind == "grouped_gemm"
    assert row.predicted == pytest.approx(expected, rel=1e-9)
    assert not row.in_sample


def test_grouped_case_rejects_a_dense_field(tmp_path: Path) -> None:
    bad = tmp_path / "g.yaml"
    bad.write_text(f"""case: grouped_gemm
name: g
topology: {ROOT / 'topologies' / 'dgx-h100-superpod.yaml'}
points:
  - label: a
    groups: 2
    tokens_per_group: 128
    m: 256
    n: 128
    k: 128
    measured: [{{metric: tflops, value: 1.0, units: TFLOP/s, category: kernel_gemm, source: s}}]
""")
    with pytest.raises(SpecError) as info:
        load_case(bad)
    assert "points.0.m" in str(info.value) and "\n" not in str(info.value)


def test_mamf_b200_point_by_hand(rows) -> None:
    # 1792 x 16128 x 3072 BF16 on B200: 14 x 126 = 1764 tiles on 148 SMs -> 12 waves,
    # utilization 1764 / (12 x 148); rate = 2250 x 0.776 x util TFLOP/s; + 4 us launch.
    acc = load_topology(ROOT / "topologies" / "dgx-b200-superpod.yaml").accelerator
    flops = 2.0 * 1792 * 16128 * 3072
    rate = acc.bf16_dense_tflops * 1e12 * acc.gemm_efficiency * 1764 / (12 * 148)
    expected = flops / (flops / rate + acc.kernel_launch_us * 1e-6) / 1e12
    row = _row(rows, "mamf-b200-bf16", "MAMF 1792x16128x3072")
    assert row.predicted == pytest.approx(expected, rel=1e-9)
    assert row.in_sample


# --- the GB300 topology ---------------------------------------------------------------------

def test_gb300_topology_per_device_bandwidths() -> None:
    # NVLink 5 900 GB/s per direction; one ConnectX-8 800 Gb/s = 100 GB/s per GPU.
    topo = load_topology(ROOT / "topologies" / "gb300-nvl72-superpod.yaml")
    assert topo.num_devices == 8 * 72
    per = [as_gbyte_per_s(s.per_device_bytes_per_s) for s in tier_summaries(topo)]
    assert per == pytest.approx([900, 100])
    acc = topo.accelerator
    assert (acc.bf16_dense_tflops, acc.fp8_dense_tflops) == (2500, 5000)   # = GB200 (MLE-acc)

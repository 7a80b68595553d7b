"""The second set of published cases (2026-12): every file loads and is checked, and the new
case and point kinds (grouped GEMM, DeepEP low-latency, DeepEP token dtype) agree with numbers
derived by hand from the formulas in their modules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.check import load_case, run_check
from moesim.cluster import build_cluster
from moesim.errors import SpecError
from moesim.network import deepep
from moesim.network.efficiency import DEEPEP_RDMA_EFF, NVLINK_P2P_EFF
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
    "deepep-v1-lowlatency-h800.yaml",
    "mcore-deepep-ep32-gb200-mnnvl.yaml",
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

def _roofline_rows(tmp_path: Path, name: str):
    """The rows of a shipped kernel case priced with ``calibration: none`` (the roofline)."""
    from moesim.check.evaluate import evaluate_case

    text = (ROOT / "scenarios" / "published" / name).read_text()
    text = text.replace("\ncase: ", "\ncalibration: none\ncase: ", 1)
    text = text.replace("../../topologies/", str(ROOT / "topologies") + "/")
    path = tmp_path / name
    path.write_text(text)
    return evaluate_case(str(path), load_case(path), "analytic")



def test_grouped_gemm_point_is_the_roofline_by_hand(tmp_path: Path) -> None:
    # With `calibration: none`. DeepGEMM contiguous 4 x 8192, N 4096, K 7168, FP8 (block
    # scaling runs on the FP8 tensor cores) on H800 (moesim.compute.roofline):
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
    row = _row(_roofline_rows(tmp_path, "deepgemm-fp8-h800-grouped.yaml"),
               "deepgemm-fp8-h800-grouped", "contiguous 4x8192 n4096 k7168")
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


def test_mamf_b200_point_by_hand(tmp_path: Path) -> None:
    # With `calibration: none`. 1792 x 16128 x 3072 BF16 on B200: 14 x 126 = 1764 tiles on 148 SMs -> 12 waves,
    # utilization 1764 / (12 x 148); rate = 2250 x 0.776 x util TFLOP/s; + 4 us launch.
    acc = load_topology(ROOT / "topologies" / "dgx-b200-superpod.yaml").accelerator
    flops = 2.0 * 1792 * 16128 * 3072
    rate = acc.bf16_dense_tflops * 1e12 * acc.gemm_efficiency * 1764 / (12 * 148)
    expected = flops / (flops / rate + acc.kernel_launch_us * 1e-6) / 1e12
    row = _row(_roofline_rows(tmp_path, "mamf-b200-bf16.yaml"), "mamf-b200-bf16",
               "MAMF 1792x16128x3072")
    assert row.predicted == pytest.approx(expected, rel=1e-9)


# --- DeepEP low-latency --------------------------------------------------------------------

def _h800(n: int = 256):
    return build_cluster(load_topology(ROOT / "topologies" / "h800-deepseek-2048.yaml"), n)


def test_low_latency_dispatch_ep16_by_hand(rows) -> None:
    # 128 tokens x top-8 = 1024 messages of 7168 + 7168/128 x 4 + 16 = 7408 B per rank.
    # EP16 = 2 nodes of 8: 1/16 to itself, 7/16 over NVLink (160 GB/s x NVLINK_P2P_EFF),
    # 8/16 over RDMA (400 Gb/s = 50 GB/s x DEEPEP_RDMA_EFF); RDMA is the slower leg.
    total = 1024 * 7408
    rdma = total * 8 / 16 / (50e9 * DEEPEP_RDMA_EFF)
    nvl = total * 7 / 16 / (160e9 * NVLINK_P2P_EFF)
    assert rdma > nvl
    expected_us = (deepep.LL_DISPATCH_FIXED_S + rdma) * 1e6
    ll = deepep.deepep_low_latency(_h800(), 16, phase="dispatch", ranks_per_node=8)
    assert ll.time_s * 1e6 == pytest.approx(expected_us, rel=1e-12)
    assert ll.reported_bytes == total
    row = _row(rows, "deepep-v1-lowlatency-h800", "EP16 dispatch")
    assert row.predicted == pytest.approx(expected_us, rel=1e-9)
    assert not row.in_sample


def test_low_latency_without_nvlink_sends_every_peer_by_rdma() -> None:
    # EP128 combine, pre-June-2025 kernels: 127/128 of 1024 x 14336 B over RDMA.
    ll = deepep.deepep_low_latency(_h800(), 128, phase="combine", ranks_per_node=8, nvlink=False)
    rdma = 1024 * 14336 * 127 / 128
    assert ll.nvlink_bytes == 0 and ll.rdma_bytes == pytest.approx(rdma)
    assert ll.time_s == pytest.approx(deepep.LL_COMBINE_FIXED_S + rdma / (50e9 * DEEPEP_RDMA_EFF))


def _fit_points(phase: str):
    """(leg seconds, published seconds, in_sample) of every low-latency point of one phase."""
    case = load_case(PUBLISHED / "deepep-v1-lowlatency-h800.yaml")
    cluster = _h800()
    out = []
    for p in case.points:
        if p.phase != phase:
            continue
        _, nvl, rdma = deepep.low_latency_legs(p.num_ranks, phase=p.phase, ranks_per_node=8,
                                                num_tokens=p.num_tokens, hidden=p.hidden,
                                                num_topk=p.num_topk, nvlink=p.nvlink)
        (m,) = p.measured
        out.append((deepep.low_latency_leg_times(cluster, nvl, rdma), m.value * 1e-6,
                    m.in_sample))
    return out


@pytest.mark.parametrize(("phase", "constant"), [("dispatch", "LL_DISPATCH_FIXED_S"),
                                                 ("combine", "LL_COMBINE_FIXED_S")])
def test_low_latency_fixed_parts_refit_from_the_case(phase: str, constant: str) -> None:
    # The constants are the relative least-squares fit over the in-sample points (EP8, 32, 64,
    # 256: four per constant), to the 0.05 us they are written with.
    pts = [p for p in _fit_points(phase) if p[2]]
    assert len(pts) == 4
    fitted = deepep.fit_low_latency_fixed([v for v, _, _ in pts], [t for _, t, _ in pts])
    assert fitted == pytest.approx(getattr(deepep, constant), abs=0.05e-6)


@pytest.mark.parametrize("phase", ["dispatch", "combine"])
def test_low_latency_leave_one_out_within_six_percent(phase: str) -> None:
    # docs/validation.md reports these errors: refit without one in-sample point, predict it.
    pts = [p for p in _fit_points(phase) if p[2]]
    for i, (v, t, _) in enumerate(pts):
        rest = pts[:i] + pts[i + 1:]
        a = deepep.fit_low_latency_fixed([x for x, _, _ in rest], [y for _, y, _ in rest])
        assert abs((a + v) / t - 1) < 0.06, (phase, i)


# --- DeepEP token dtype and the latency metric of the normal kernels ------------------------

def test_normal_mode_latency_is_reported_bytes_over_bandwidth(tmp_path: Path) -> None:
    case = tmp_path / "ep.yaml"
    case.write_text(f"""case: deepep
name: ep
topology: {ROOT / 'topologies' / 'h800-deepseek-2048.yaml'}
num_devices: 32
points:
  - label: EP32 dispatch
    num_ranks: 32
    phase: dispatch
    measured:
      - {{metric: bandwidth_gbyte_per_s, value: 1, units: GB/s, category: c, source: s}}
      - {{metric: latency_us, value: 1, units: us, category: c, source: s}}
""")
    bw, lat = (r.predicted for r in run_check([case], fidelity="analytic").rows)
    tr = deepep.deepep_traffic(32)   # DeepEP's defaults: 4096 tokens, FP8, top-4 of 8 nodes
    assert lat == pytest.approx(tr.reported_bytes / (bw * 1e9) * 1e6, rel=1e-9)


def test_token_dtype_changes_bytes_not_nvlink_bandwidth() -> None:
    topo = load_topology(ROOT / "topologies" / "gb200-nvl72-superpod.yaml",
                         {"tiers.1.num_domains": 1})
    cluster = build_cluster(topo, 72)
    bf16 = deepep.deepep_reported_bandwidth(cluster, 32, phase="dispatch", ranks_per_node=72,
                                            dtype="bf16")
    fp8 = deepep.deepep_reported_bandwidth(cluster, 32, phase="dispatch", ranks_per_node=72)
    # NVLink-bound: the same bandwidth whatever the token size, up to the fixed latency.
    assert bf16 == pytest.approx(fp8, rel=0.02)
    assert deepep.token_bytes(7168, "dispatch", "bf16") == 7168 * 2
    assert deepep.token_bytes(7168, "dispatch") == pytest.approx(7168 * (1 + 4 / 128))


# --- the GB300 topology ---------------------------------------------------------------------

def test_gb300_topology_per_device_bandwidths() -> None:
    # NVLink 5 900 GB/s per direction; one ConnectX-8 800 Gb/s = 100 GB/s per GPU.
    topo = load_topology(ROOT / "topologies" / "gb300-nvl72-superpod.yaml")
    assert topo.num_devices == 8 * 72
    per = [as_gbyte_per_s(s.per_device_bytes_per_s) for s in tier_summaries(topo)]
    assert per == pytest.approx([900, 100])
    acc = topo.accelerator
    assert (acc.bf16_dense_tflops, acc.fp8_dense_tflops) == (2500, 5000)   # = GB200 (MLE-acc)


def test_low_latency_on_a_torus_is_one_spec_error() -> None:
    cluster = build_cluster(load_topology(ROOT / "topologies" / "tpu-v5e-256.yaml"), 16)
    with pytest.raises(SpecError, match="NVSwitch"):
        deepep.deepep_low_latency(cluster, 16, phase="dispatch")

"""Roofline times against hand arithmetic on H100 (989.4 TFLOP/s BF16 dense, 3.35 TB/s)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.compute import KernelCostModel
from moesim.compute.roofline import quantization_utilization


def test_compute_bound_gemm(h100):
    # 8192^3 BF16: FLOPs = 2 * 8192^3 = 1.099511627776e12.
    # Tiles 128x128: (8192/128)^2 = 4096 >= 132 SMs, so no split-K; waves = ceil(4096/132)
    # = 32, paid tiles 32*132 = 4224, utilization 4096/4224 = 0.96969697.
    # Compute: 1.0995e12 / (989.4e12 * 0.803 * 0.96969697) = 1.099512e12 / 7.704128e14 = 1.427172e-3 s.
    # Memory: 2 B * 3 * 8192^2 = 402,653,184 B / (3.35e12 * 0.85) = 1.41405e-4 s (smaller).
    # Total = 1.427172e-3 + 4e-6 launch = 1.431172e-3 s.
    t = KernelCostModel(h100, "bf16").gemm(8192, 8192, 8192)
    compute = 2 * 8192**3 / (989.4e12 * 0.803 * (4096 / 4224))
    assert t.time_s == pytest.approx(compute + 4e-6, rel=1e-12)
    assert t.time_s == pytest.approx(1.431172e-3, rel=1e-6)
    assert t.flops == 2 * 8192**3
    assert t.source == "roofline"


def test_memory_bound_gemm(h100):
    # m = 16 tokens, n = k = 8192: tiles = ceil(16/128) * 64 = 64 < 132 SMs, so split-K by
    # floor(132/64) = 2: 128 work units, 1 wave; utilization = 16*8192*2 / (132*128*128)
    # = 262144 / 2162688 = 0.121212. Compute = 2*16*8192^2 / (989.4e12*0.803*0.121212)
    # = 2.2297e-5 s. Memory = 2 B * (16*8192 + 8192*8192 + 16*8192) = 134,742,016 B
    # / (3.35e12 * 0.85) = 4.73196e-5 s, the larger: total = 4.73196e-5 + 4e-6 = 5.13196e-5.
    t = KernelCostModel(h100, "bf16").gemm(16, 8192, 8192)
    memory = 2 * (16 * 8192 + 8192 * 8192 + 16 * 8192) / (3.35e12 * 0.85)
    compute = 2 * 16 * 8192**2 / (989.4e12 * 0.803 * (262144 / 2162688))
    assert memory > compute
    assert t.time_s == pytest.approx(memory + 4e-6, rel=1e-12)
    assert t.time_s == pytest.approx(5.13196e-5, rel=1e-5)


def test_memory_op_streams_at_hbm_efficiency(h100):
    # 1 GiB / (3.35e12 B/s * 0.85) = 1073741824 / 2.8475e12 = 3.77082e-4 s, + 4 us launch.
    t = KernelCostModel(h100, "bf16").memory_op(2.0**30)
    assert t.time_s == pytest.approx(2.0**30 / 2.8475e12 + 4e-6, rel=1e-12)
    assert t.source == "roofline"


def test_fp8_uses_fp8_peak_and_efficiency(h100):
    # 8192^3 FP8: same tiles (utilization 4096/4224); rate 1978.9e12 * 0.709.
    t = KernelCostModel(h100, "fp8").gemm(8192, 8192, 8192)
    expect = 2 * 8192**3 / (1978.9e12 * 0.709 * (4096 / 4224)) + 4e-6
    assert t.time_s == pytest.approx(expect, rel=1e-12)


def test_attention_flops_and_causal_halving(h100):
    model = KernelCostModel(h100, "bf16")
    full = model.attention(1, 4096, 4096, 32, 8, 128, causal=False)
    causal = model.attention(1, 4096, 4096, 32, 8, 128, causal=True)
    # Forward FLOPs 4 * b * s_q * s_kv * h * d = 4 * 4096^2 * 32 * 128 = 2.748779e11.
    assert full.flops == 4 * 4096**2 * 32 * 128
    assert causal.flops == full.flops / 2
    # Non-causal at s=4096: efficiency 0.6357 * 4096/(4096+237) = 0.60095 of 989.4 TF:
    # 2.748779e11 / (989.4e12 * 0.60095) = 4.6231e-4 s (+ 4 us launch).
    assert full.time_s == pytest.approx(4.6231e-4 + 4e-6, rel=1e-3)
    bwd = model.attention(1, 4096, 4096, 32, 8, 128, causal=True, backward=True)
    assert bwd.flops == 2.5 * causal.flops
    assert bwd.time_s > 2.5 * (causal.time_s - 4e-6)  # backward runs at a lower FLOP rate


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=16), st.integers(1, 30000),
       st.integers(1, 30000))
def test_utilization_is_a_fraction(tokens, n, k):
    u = float(quantization_utilization(np.array([tokens]), n, k, 132)[0])
    assert 0.0 <= u <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 8192), st.integers(64, 16384), st.integers(64, 16384))
def test_roofline_never_beats_peak_or_bandwidth(m, n, k):
    from moesim.specs.hardware import AcceleratorSpec

    acc = AcceleratorSpec(name="H100-SXM", bf16_dense_tflops=989.4, hbm_capacity_gib=80,
                          hbm_gbyte_per_s=3350, gemm_efficiency=0.803, num_sms=132)
    t = KernelCostModel(acc, "bf16").gemm(m, n, k)
    assert t.time_s >= t.flops / (989.4e12 * 0.803)
    assert t.time_s >= t.bytes / (3350e9 * 0.85)

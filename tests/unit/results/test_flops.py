"""Megatron-style model FLOPs, checked against hand arithmetic for Mixtral 8x7B."""

from __future__ import annotations

import pytest

from moesim.results.flops import model_flops_per_token
from moesim.specs.loader import load_scenario


def test_mixtral_flops_per_token(root) -> None:
    m = load_scenario(root / "scenarios" / "mixtral-8x7b-64xh100.yaml").model_spec
    h, s, f, v = 4096, 4096, 14336, 32000
    # Per layer forward: QKV (4096 -> (32 + 2*8)*128 = 6144) + out (4096 -> 4096), scores
    # 2 * 2 * s * 32 heads * 128, router 2*h*8, two SwiGLU experts 2 * 3 * h * f each.
    attn = 2 * h * 6144 + 2 * h * h + 4 * s * 32 * 128
    ffn = 2 * 8 * h + 2 * 2 * 3 * h * f
    expected = 3 * (32 * (attn + ffn) + 2 * h * v)
    assert model_flops_per_token(m, s) == pytest.approx(expected, rel=1e-12)
    causal = model_flops_per_token(m, s, causal=True)
    assert expected - causal == pytest.approx(3 * 32 * 2 * s * 32 * 128, rel=1e-12)

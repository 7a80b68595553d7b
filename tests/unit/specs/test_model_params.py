"""Parameter counts from the model files, against published totals."""

from moesim.specs import load_model


def test_mixtral_8x7b_params(root):
    # Mixtral paper (arXiv:2401.04088): 46.7B total ("47B"), 12.9B active ("13B").
    m = load_model(root / "scenarios/models/mixtral-8x7b.yaml")
    assert abs(m.total_params / 46.7e9 - 1) < 0.01
    assert abs(m.active_params / 12.9e9 - 1) < 0.01
    assert m.num_moe_layers == 32

"""Goodput of a run: zero failures, directions, seeds, defaults and bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.errors import SpecError
from moesim.goodput import estimate_goodput, goodput_for, load_goodput, steady_efficiency
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
QWEN = ROOT / "scenarios" / "qwen3-235b-a22b-256xh100.yaml"


@pytest.fixture(scope="module")
def qwen():  # noqa: ANN201
    return load_scenario(QWEN)


def _no_failures(spec):  # noqa: ANN001, ANN202
    rel = spec.reliability.model_copy(update={"sources": ()})
    return spec.model_copy(update={"reliability": rel})


def test_zero_failures_give_the_ideal_time(qwen) -> None:  # noqa: ANN001
    spec = _no_failures(goodput_for(qwen))
    r = estimate_goodput(qwen, spec, 2e12, 4e5)
    assert r.expected_wall_s == r.ideal_s == r.p50_s == r.p90_s == pytest.approx(2e12 / 4e5)
    assert r.efficiency == 1.0 and r.expected_failures == 0.0


def test_every_shipped_accelerator_has_a_host_and_a_price(root: Path) -> None:
    from moesim.specs.loader import load_topology

    for f in sorted((root / "topologies").glob("*.yaml")):
        topo = load_topology(f)
        spec = load_goodput(topo.accelerator.name)
        assert spec.host.source, f"{f.name}: no host entry for {topo.accelerator.name}"
        if topo.price_per_device_hour is None:  # only where the file says no list price exists
            assert "# No price_per_device_hour:" in f.read_text(encoding="utf-8"), f.name
        else:
            assert topo.price_per_device_hour > 0, f.name


def test_more_devices_more_interruptions_lower_efficiency(qwen) -> None:  # noqa: ANN001
    spec = goodput_for(qwen)
    small = estimate_goodput(qwen, spec, 2e12, 4e5, devices=256)
    big = estimate_goodput(qwen, spec, 2e12, 4e5 * 64, devices=16384)
    assert big.interruptions_per_day == pytest.approx(64 * small.interruptions_per_day, rel=0.01)
    assert big.efficiency < small.efficiency < 1.0
    assert steady_efficiency(qwen, spec, 16384) < steady_efficiency(qwen, spec, 256)


def test_cost_and_energy_follow_the_wall_time(qwen) -> None:  # noqa: ANN001
    spec = goodput_for(qwen)
    r = estimate_goodput(qwen, spec, 2e12, 4e5, price_per_device_hour=2.0)
    hours = r.expected_wall_s / 3600
    assert r.cost_usd(r.expected_wall_s) == pytest.approx(256 * 2.0 * hours)
    # 256 H100 at 1,275 W of host power each (DGX H100 10.2 kW / 8) x PUE 1.56.
    assert r.energy_mwh(r.expected_wall_s) == pytest.approx(256 * 1275 * 1.56 * hours / 1e6)
    d = r.summary()
    assert d["goodput_cost_usd"] >= d["ideal_cost_usd"] and d["goodput_days"] >= d["ideal_days"]


def test_results_are_deterministic_by_seed(qwen) -> None:  # noqa: ANN001
    spec = goodput_for(qwen)
    a = estimate_goodput(qwen, spec, 2e12, 4e5)
    b = estimate_goodput(qwen, spec, 2e12, 4e5)
    c = estimate_goodput(qwen, spec.model_copy(update={"seed": 99}), 2e12, 4e5)
    assert a.summary() == b.summary() and a.p90_s != c.p90_s
    assert a.expected_wall_s == c.expected_wall_s  # the closed form has no seed


def test_user_file_overrides_sections(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("reliability: {restart_s: 60}\ncheckpoint: {async_save: true}\npue: 1.1\n"
                 "hosts: {H100-SXM: {it_power_per_device_w: 1000}}\n")
    spec = load_goodput("H100-SXM", f)
    assert spec.reliability.restart_s == 60 and spec.reliability.sources  # merged, not replaced
    assert spec.checkpoint.async_save and spec.checkpoint.aggregate_write_gbyte_per_s == 2000
    assert spec.pue == 1.1 and spec.host.it_power_per_device_w == 1000
    assert spec.host.devices_per_host == 8


@pytest.mark.parametrize("text,field", [
    ("checkpoint: {aggregate_write_gbyte_per_s: 0}", "checkpoint.aggregate_write_gbyte_per_s"),
    ("reliability: {sources: [{name: x, kind: accelerator, failures_per_unit_hour: -1}]}",
     "reliability.sources.0.failures_per_unit_hour"),
    ("pue: 0.5", "pue"),
    ("checkpoint: {save_weights: false, save_optimizer_states: false}", "checkpoint"),
    ("stragglers: {straggler_probability: 2}", "stragglers.straggler_probability"),
    ("nonsense: 1", "nonsense"),
])
def test_bad_inputs_are_one_spec_error(tmp_path: Path, text: str, field: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text + "\n")
    with pytest.raises(SpecError) as info:
        load_goodput("H100-SXM", f)
    msg = str(info.value)
    assert "\n" not in msg and str(f) in msg and field.split(".")[0] in msg


def test_device_energy_is_devices_times_board_power_times_hours(qwen) -> None:  # noqa: ANN001
    # No failures: the run takes tokens / rate = 2e12 / 4e5 s = 5e6 s; 256 H100 at 700 W board
    # power (defaults.yaml) draw 256 x 700 x 5e6 J = 896 MWh, with no host share and no PUE.
    spec = _no_failures(goodput_for(qwen))
    r = estimate_goodput(qwen, spec, 2e12, 4e5)
    assert r.device_tdp_w == 700.0 and r.expected_wall_s == pytest.approx(5e6)
    assert r.summary()["goodput_device_energy_mwh"] == pytest.approx(256 * 700 * 5e6 / 3.6e9)
    no_tdp = spec.model_copy(update={"host": spec.host.model_copy(update={"device_tdp_w": None})})
    assert estimate_goodput(qwen, no_tdp, 2e12, 4e5).summary()["goodput_device_energy_mwh"] is None

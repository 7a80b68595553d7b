"""Capacity and plan with goodput: the expected wall time decides, the ideal stays beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_paths import FAKE, FAKE_MEMORY, MIXTRAL

from moesim.goodput import goodput_for
from moesim.plan.capacity import plan_capacity
from moesim.plan.capacity_page import curves, fig_days_vs_devices, write_capacity_html
from moesim.plan.evaluate import Backend
from moesim.plan.layouts import SearchSpaceSpec
from moesim.plan.search import plan_layouts, summary_rows
from moesim.specs.loader import load_scenario

FAKES = Backend(FAKE, FAKE_MEMORY)
SPACE = SearchSpaceSpec(max_pipeline_parallel=4, max_context_parallel=1, micro_batch_sizes=(1,),
                        virtual_stages=(1,))


@pytest.fixture(scope="module")
def mixtral():  # noqa: ANN201
    return load_scenario(MIXTRAL)


def _sloppy(spec):  # noqa: ANN001, ANN202
    """Failures 100x Llama 3's and an hour per restart: goodput well below ideal."""
    rel = spec.reliability
    sources = tuple(s.model_copy(update={"failures_per_unit_hour": s.failures_per_unit_hour * 1e2})
                    for s in rel.sources)
    return spec.model_copy(update={"reliability": rel.model_copy(
        update={"sources": sources, "restart_s": 3600.0})})


def test_goodput_needs_at_least_the_ideal_size(mixtral) -> None:  # noqa: ANN001
    at64 = plan_layouts(mixtral, 64, backend=FAKES, des_top=1, space=SPACE).best.tokens_per_s
    tokens = at64 * 10 * 86400 * 0.6  # 64 devices ideally need 6 of the 10 days
    ideal = plan_capacity(mixtral, tokens, 10, backend=FAKES, space=SPACE)
    good = plan_capacity(mixtral, tokens, 10, backend=FAKES, space=SPACE,
                         goodput=_sloppy(goodput_for(mixtral)))
    assert ideal.goodput is None and ideal.train_days == ideal.ideal_days
    assert good.devices > ideal.devices  # 48 ideally, 64 with the failures priced
    assert good.goodput is not None and good.train_days <= 10
    assert good.train_days > good.ideal_days
    assert good.cost_usd > good.ideal_cost_usd
    assert set(good.visited_goodput) <= set(good.visited)


def test_one_size_with_the_scenarios_own_layout(mixtral) -> None:  # noqa: ANN001
    res = plan_capacity(mixtral, 1e9, 30, backend=FAKES, devices=64, keep_layout=True,
                        goodput=goodput_for(mixtral))
    assert res.devices == 64 and list(res.visited) == [64]
    best = res.plan.best
    assert best.fidelity == "des" and (best.layout.tp, best.layout.pp, best.layout.ep) == (1, 4, 8)
    assert res.goodput.devices == 64 and res.energy_mwh > 0


def test_plan_rows_carry_goodput(mixtral) -> None:  # noqa: ANN001
    res = plan_layouts(mixtral, 64, backend=FAKES, des_top=1, space=SPACE,
                       goodput=goodput_for(mixtral), price_per_device_hour=2.0)
    rows = summary_rows(res, 5)
    for r in rows:
        assert 0.9 < r["goodput_efficiency"] < 1.0
        assert r["goodput_tokens_per_s"] == pytest.approx(r["tokens_per_s"] * r["goodput_efficiency"])
        assert r["goodput_usd_per_million_tokens"] > r["usd_per_million_tokens"]
    plain = plan_layouts(mixtral, 64, backend=FAKES, des_top=1, space=SPACE)
    assert summary_rows(plain, 1)[0]["goodput_tokens_per_s"] is None
    assert [c.layout for c in plain.ranked] == [c.layout for c in res.ranked]  # same order


def test_capacity_page_draws_ideal_and_goodput(mixtral, tmp_path: Path) -> None:  # noqa: ANN001
    res = plan_capacity(mixtral, 5e10, 10, backend=FAKES, space=SPACE,
                        goodput=_sloppy(goodput_for(mixtral)))
    rows = curves(res)
    assert rows and all(r["goodput_days"] >= r["ideal_days"] for r in rows)
    names = {t.name for t in fig_days_vs_devices(res).data}
    assert {"ideal (no failures)", "goodput (expected)", "goodput p50-p90"} <= names
    page = write_capacity_html(res, tmp_path / "cap.html", "mixtral")
    assert page.is_file() and (tmp_path / "plotly.min.js").is_file()

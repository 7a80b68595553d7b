"""The published suite (scenarios/published) and the accuracy-regression guard.

``test_no_category_regresses_past_the_readme`` runs every shipped case at analytic fidelity
(the DES is the answer, the analytic estimate is what CI can afford; the README table is
generated at the same fidelity) and fails when a category's mean absolute error rises above
the value README.md states between its check-table markers. A new category must be stated
too. Regenerate the README block with ``python scripts/gen_check_table.py --write README.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.check import CheckRow, load_case, mape, run_check, summarize
from moesim.check.render import check_block, parse_stated_errors, replace_block
from moesim.check.suite import CheckReport, discover
from moesim.errors import SpecError
from moesim.specs.loader import load_topology

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "scenarios" / "published"
# The README states errors to 0.1 percentage point; half of that is rounding, not regression.
ROUNDING = 0.05


@pytest.fixture(scope="module")
def report() -> CheckReport:
    return run_check([PUBLISHED], fidelity="analytic")


def test_no_category_regresses_past_the_readme(report: CheckReport) -> None:
    stated = parse_stated_errors((ROOT / "README.md").read_text(encoding="utf-8"))
    for s in report.summary():
        assert s.category in stated, f"{s.category} is not stated in README.md; regenerate"
        total, held = stated[s.category]
        assert s.mape_pct <= total + ROUNDING, (s.category, s.mape_pct, total)
        if held is not None and s.held_out_mape_pct is not None:
            assert s.held_out_mape_pct <= held + ROUNDING, (s.category, s.held_out_mape_pct)


def test_every_shipped_file_is_checked(report: CheckReport) -> None:
    # The only file without a measured block is the Switch base scenario the ratios use.
    files = {str(p) for p in discover([PUBLISHED])}
    assert {Path(f).name for f in report.skipped} == {"switch-base-128-tpuv3-32core.yaml"}
    assert {r.file for r in report.rows} | set(report.skipped) == files
    assert len(report.rows) >= 55
    assert all(r.predicted > 0 and r.published > 0 for r in report.rows)


def test_every_published_category_is_present(report: CheckReport) -> None:
    cats = {r.category for r in report.rows}
    assert {"training_throughput", "training_step_time", "collective_bandwidth",
            "ep_alltoall", "kernel_gemm", "training_speedup"} <= cats


def test_mamf_h100_point_is_the_roofline_by_hand(tmp_path: Path) -> None:
    # With `calibration: none`: 2048 x 2048 x 13312 BF16 on H100: 16 x 16 = 256 tiles of
    # 128 x 128 on 132 SMs -> two waves, utilization 256 / 264; rate = 989.4 x 0.803 x 256/264
    # TFLOP/s; plus 4 us launch (moesim.compute.roofline; topology values from
    # topologies/dgx-h100-superpod.yaml).
    from moesim.check.evaluate import evaluate_gemm

    acc = load_topology(ROOT / "topologies" / "dgx-h100-superpod.yaml").accelerator
    flops = 2.0 * 2048 * 2048 * 13312
    rate = acc.bf16_dense_tflops * 1e12 * acc.gemm_efficiency * 256 / 264
    expected = flops / (flops / rate + acc.kernel_launch_us * 1e-6) / 1e12
    text = (PUBLISHED / "mamf-h100-bf16.yaml").read_text().replace(
        "case: gemm\n", "case: gemm\ncalibration: none\n")
    text = text.replace("../../topologies/", str(ROOT / "topologies") + "/")
    case_file = tmp_path / "mamf-roofline.yaml"
    case_file.write_text(text)
    (row,) = evaluate_gemm(str(case_file), load_case(case_file))
    assert row.predicted == pytest.approx(expected, rel=1e-9)


def test_mamf_h100_point_prices_from_the_measured_table(report: CheckReport) -> None:
    # The shipped case prices as an H100 scenario does: the shipped table's GEMM at the shape
    # (a held-out point; the roofline's efficiency plays no part).
    from moesim.compute import KernelCostModel
    from moesim.compute.tables import DEFAULT_TABLES, table_path_for

    acc = load_topology(ROOT / "topologies" / "dgx-h100-superpod.yaml").accelerator
    table = DEFAULT_TABLES.load(table_path_for(acc, None))
    t = KernelCostModel(acc, "bf16", table).gemm(2048, 2048, 13312)
    (row,) = [r for r in report.rows if r.case == "mamf-h100-bf16"]
    assert t.source == "measured"
    assert row.predicted == pytest.approx(t.flops / t.time_s / 1e12, rel=1e-9)
    assert not row.in_sample


def test_ratio_of_a_scenario_to_itself_is_one(tmp_path: Path) -> None:
    case = tmp_path / "self.yaml"
    base = (PUBLISHED / "switch-base-128-tpuv3-32core.yaml").resolve()
    case.write_text(f"""case: ratio
name: self
points:
  - label: same
    field: step_time_s
    numerator: {{scenario: {base}}}
    denominator: {{scenario: {base}}}
    measured: [{{metric: ratio, value: 2.0, units: x, category: c, source: s}}]
""")
    (row,) = run_check([case], fidelity="analytic").rows
    assert row.predicted == pytest.approx(1.0)
    assert row.error_pct == pytest.approx(-50.0)   # (1 - 2) / 2


# --- case files ---------------------------------------------------------------------------

_GOOD = """case: gemm
name: g
topology: {topo}
points:
  - label: a
    m: 128
    n: 128
    k: 128
    measured: [{{metric: tflops, value: 1.0, units: TFLOP/s, category: kernel_gemm, source: s}}]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "case.yaml"
    p.write_text(text.format(topo=ROOT / "topologies" / "dgx-h100-superpod.yaml"))
    return p


def test_good_case_loads(tmp_path: Path) -> None:
    spec = load_case(_write(tmp_path, _GOOD))
    assert spec.case == "gemm" and spec.points[0].batch == 1


@pytest.mark.parametrize(("edit", "message"), [
    (("metric: tflops", "metric: busbw_gbyte_per_s"), "valid: tflops, time_s"),
    (("case: gemm", "case: gemv"), "is not a case kind"),
    (("m: 128", "m: 0"), "points.0.m"),
    (("k: 128", "k: 128\n    colour: red"), "unknown field"),
])
def test_bad_case_is_one_spec_error(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_case(_write(tmp_path, _GOOD.replace(*edit)))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_duplicate_labels_are_rejected(tmp_path: Path) -> None:
    twice = _GOOD + _GOOD.split("points:\n")[1]
    with pytest.raises(SpecError, match="appears twice"):
        load_case(_write(tmp_path, twice))


def test_collective_sizes_parse_as_bytes() -> None:
    spec = load_case(PUBLISHED / "mleng-h200-8gpu-allreduce-sweep.yaml")
    sizes = {p.label: p.size_bytes for p in spec.points}
    assert sizes["all_reduce default 32KiB"] == 32 * 1024
    assert sizes["all_reduce default 16GiB"] == 16 * 1024**3


# --- summaries and the README block -------------------------------------------------------

def _row(cat: str, published: float, predicted: float, in_sample: bool = False) -> CheckRow:
    return CheckRow(file="f", case="c", label="l", kind="k", metric="m", category=cat,
                    units="u", published=published, predicted=predicted, source="s", note="",
                    in_sample=in_sample)


def test_summary_by_hand() -> None:
    # errors +10%, -30% (in-sample), +5%: all 15.0, held-out 7.5
    rows = [_row("a", 100, 110), _row("a", 10, 7, True), _row("a", 2, 2.1)]
    (s,) = summarize(rows)
    assert s.num_points == 3 and s.mape_pct == pytest.approx(15.0)
    assert s.num_held_out == 2 and s.held_out_mape_pct == pytest.approx(7.5)


_values = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
_rows = st.lists(st.builds(_row, st.sampled_from(["x_a", "x_b", "x_c"]), _values, _values,
                           st.booleans()), min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(rows=_rows, order=st.randoms(use_true_random=False))
def test_mape_ignores_order_and_is_nonnegative(rows: list[CheckRow], order) -> None:  # noqa: ANN001
    shuffled = list(rows)
    order.shuffle(shuffled)
    a, b = mape(rows), mape(shuffled)
    assert a is not None and b is not None and a >= 0 and a == pytest.approx(b)


@settings(max_examples=50, deadline=None)
@given(rows=_rows)
def test_readme_block_round_trips(rows: list[CheckRow]) -> None:
    report = CheckReport(fidelity="analytic", rows=tuple(rows))
    text = replace_block("# readme\n\nintro\n", check_block(report))
    stated = parse_stated_errors(text)
    for s in report.summary():
        total, held = stated[s.category]
        assert abs(total - s.mape_pct) <= ROUNDING + 1e-9
        assert (held is None) == (s.held_out_mape_pct is None)
    # rewriting in place keeps the text around the block and leaves one block
    again = replace_block(text.replace("intro", "intro!"), check_block(report))
    assert again.count("check-table:start") == 1 and "intro!" in again


def test_broken_block_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        parse_stated_errors("no block here")
    with pytest.raises(SpecError):
        replace_block("<!-- check-table:end --> <!-- check-table:start -->", "x")

"""write_report, the offline HTML, summary.csv and the rich headline table."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import plotly.offline
from report_fixture_result import make_result
from rich.console import Console

from moesim.report import figure_div_ids, print_summary, render_html, summary_csv, write_report
from moesim.results.schema import SimulationResult


def test_write_report_writes_five_files(result: SimulationResult, tmp_path: Path) -> None:
    paths = write_report(result, tmp_path / "out")
    assert set(paths) == {"result", "summary", "html", "trace", "plotly"}
    assert {p.name for p in paths.values()} == {"result.json", "summary.csv", "report.html",
                                                 "trace.json", "plotly.min.js"}
    assert SimulationResult.from_json(paths["result"].read_text()) == result
    assert json.loads(paths["trace"].read_text())["otherData"]["step_time_s"] == 0.5
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values())


def test_plotly_js_written_once_per_folder(result: SimulationResult, tmp_path: Path) -> None:
    first = write_report(result, tmp_path / "out")["plotly"]
    mtime = first.stat().st_mtime_ns
    again = write_report(result, tmp_path / "out")["plotly"]
    assert again == first and again.stat().st_mtime_ns == mtime  # identical: not rewritten
    assert first.read_text() == plotly.offline.get_plotlyjs()


def test_report_is_byte_identical_for_equal_results(tmp_path: Path) -> None:
    a = write_report(make_result(), tmp_path / "a")
    b = write_report(make_result(), tmp_path / "b")
    for key in a:
        assert a[key].read_bytes() == b[key].read_bytes(), key


def test_html_loads_plotly_from_its_folder(result: SimulationResult) -> None:
    page = render_html(result)
    assert plotly.offline.get_plotlyjs()[:2000] not in page  # not inlined
    srcs = re.findall(r"<script[^>]+src=['\"]([^'\"]+)", page)
    assert srcs == ["plotly.min.js"]  # one relative script, nothing fetched from a network
    assert len(page) < 200_000
    for div_id in figure_div_ids():
        assert page.count(f'id="{div_id}"') == 1, div_id
    assert len(figure_div_ids()) == 8


def test_summary_csv_rows(result: SimulationResult) -> None:
    rows = list(csv.DictReader(io.StringIO(summary_csv(result))))
    got = {(r["section"], r["metric"]): r["value"] for r in rows}
    assert float(got[("headline", "step_time_s")]) == 0.5
    assert float(got[("breakdown", "compute.attention_s")]) == 0.16
    assert float(got[("breakdown", "pipeline_bubble_s")]) == 0.05
    # pp1 peak: (40 + 10 + 12) GiB = 62 * 2**30 bytes
    assert float(got[("memory", "pp1.peak_bytes")]) == 62 * 2**30
    assert got[("memory", "pp0.multiplicity")] == "32"


def test_print_summary_headline(result: SimulationResult) -> None:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    print_summary(result, console)
    text = console.file.getvalue()
    assert "500.00 ms" in text and "40.0 %" in text and "fixture-mixtral-64xh100" in text

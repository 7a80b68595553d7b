"""Every HTML page in headless Chromium with no network: no script errors, every figure drawn.

Uses Debian's chromium (``apt-get install chromium``); skips with a message when it is absent.
The DOM is dumped after a virtual-time budget and every figure div must hold plotly's
``main-svg``; console errors are read from chromium's stderr log and from the page's own
``data-js-errors`` counter. The same run saves a screenshot for a human look (in the test's
tmp dir; also copied into ``$MOESIM_SCREENSHOTS`` when set). Pages: report.html of a fixed
result and of the real default scenario (analytic fidelity), the plan page of a real search,
the sweep page of a real sweep, the check page of three published cases; each loads the
plotly.min.js written beside it. A last page checks that a sortable table sorts on a click.

The trace check opens a trace.json in the browser the way a trace viewer reads it (a page
beside it loads the file and parses it with the browser's JSON parser) and counts its
complete events, their args, the last end and the flow arrows: the default scenario's DES
trace and, marked slow, DeepSeek-V3 on 2048 H800 (575k ops, about 130 MB).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from moesim.report import figure_div_ids, write_report

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# Flags that keep chromium headless and off the network (the page must work offline).
OFFLINE_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0"]

# Virtual time for plotly to draw all figures (ms of page time, not wall time).
VIRTUAL_TIME_BUDGET_MS = 20_000


def _fixture_result():
    path = Path(__file__).resolve().parents[1] / "unit" / "report" / "report_fixture_result.py"
    spec = importlib.util.spec_from_file_location("report_fixture_result", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_result()


def _chromium(url: str, profile: Path, extra: list[str]) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, *OFFLINE_FLAGS, f"--user-data-dir={profile}",
           f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or re.search(r"(ERROR|WARNING):CONSOLE", line)]


def _figure_html(dom: str, div_id: str, next_id: str | None) -> str:
    start = dom.find(f'id="{div_id}"')
    assert start >= 0, f"{div_id} missing from the DOM"
    end = dom.find(f'id="{next_id}"', start) if next_id else len(dom)
    return dom[start:end]


def _keep(shot: Path) -> None:
    keep = os.environ.get("MOESIM_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def check_page_renders(html_path: Path, tmp_path: Path, name: str,
                       ids: list[str] | None = None, height_px: int = 4000) -> tuple[Path, str]:
    """Open ``html_path`` offline; assert every figure drew and no script failed.

    ``ids``: the figure divs (default: every ``fig-*`` div of the page). One chromium run
    dumps the DOM and saves ``name.png`` (returned with the DOM)."""
    assert (html_path.parent / "plotly.min.js").exists(), "plotly.min.js not beside the page"
    shot = tmp_path / f"{name}.png"
    run = _chromium(html_path.resolve().as_uri(), tmp_path / f"profile-{name}",
                    ["--dump-dom", f"--screenshot={shot}", f"--window-size=1400,{height_px}"])
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'data-js-errors="0"' in dom, "the page counted uncaught script errors"
    assert not _console_errors(run.stderr), _console_errors(run.stderr)
    assert 'id="plotly-missing"' not in dom, "plotly.min.js did not load"
    ids = ids or re.findall(r'<div id="(fig-[^"]+)"', html_path.read_text(encoding="utf-8"))
    assert ids, "the page has no figure"
    for div_id, next_id in zip(ids, [*ids[1:], None], strict=True):
        assert "main-svg" in _figure_html(dom, div_id, next_id), f"{div_id} was not drawn"
    assert shot.stat().st_size > 30_000, "the screenshot is (nearly) blank"
    _keep(shot)
    return shot, dom


def check_report_renders(html_path: Path, tmp_path: Path, name: str = "report") -> Path:
    """report.html: every figure of ``figure_div_ids`` drawn."""
    return check_page_renders(html_path, tmp_path, name, figure_div_ids())[0]


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install chromium); browser test skipped")


@needs_chromium
def test_fixture_report_renders_offline(tmp_path: Path) -> None:
    paths = write_report(_fixture_result(), tmp_path / "report")
    shot = check_report_renders(paths["html"], tmp_path, "report-fixture")
    print(f"screenshot: {shot}")


@needs_chromium
def test_default_scenario_report_renders_offline(tmp_path: Path, root: Path) -> None:
    """The real default scenario through the engine (analytic fidelity: a few seconds)."""
    engine = pytest.importorskip("moesim.engine", reason="moesim.engine not available")
    from moesim.specs.loader import load_scenario

    scenario = load_scenario(root / "scenarios" / "default.yaml")
    result = engine.Simulation(scenario, fidelity="analytic").run()
    paths = write_report(result, tmp_path / "report")
    assert paths["html"].stat().st_size < 10_000_000
    shot = check_report_renders(paths["html"], tmp_path, "report-default")
    print(f"screenshot: {shot}")


@needs_chromium
def test_plan_page_renders_offline(tmp_path: Path, root: Path) -> None:
    """A real search (Qwen3-30B-A3B on 16 H100, 12 layouts ranked, the best simulated)."""
    from moesim.plan.figures import write_plan_html
    from moesim.plan.search import plan

    res = plan(root / "scenarios/qwen3-30b-a3b-16xh100.yaml", analytic_budget=12, des_top=1)
    page = write_plan_html(res, tmp_path / "plan" / "plan.html")
    shot, dom = check_page_renders(page, tmp_path, "plan", height_px=1400)
    assert dom.count("<tr>") >= len(res.ranked)
    print(f"screenshot: {shot}")


@needs_chromium
def test_sweep_page_renders_offline(tmp_path: Path, root: Path) -> None:
    """A real sweep (Mixtral EP x capacity factor x micro-batch: ok, infeasible, invalid)."""
    from moesim.plan.figures import write_sweep_html
    from moesim.plan.sweep import run_sweep
    from moesim.specs.sweep import load_sweep

    path = root / "scenarios/sweeps/mixtral-ep-capacity.yaml"
    spec = load_sweep(path)
    summary = run_sweep(spec, path, tmp_path / "sweep")
    page = write_sweep_html(summary.records, [a.path for a in spec.axes],
                            tmp_path / "sweep" / "sweep.html", spec.name)
    shot, dom = check_page_renders(page, tmp_path, "sweep", height_px=1800)
    assert "infeasible" in dom and "invalid" in dom
    print(f"screenshot: {shot}")


@needs_chromium
def test_check_page_renders_offline(tmp_path: Path, root: Path) -> None:
    """Three published cases: NCCL all-reduce, DeepEP dispatch/combine, an H100 GEMM."""
    from moesim.check import run_check
    from moesim.check.render import write_check_html

    cases = [root / "scenarios/published" / f for f in (
        "mleng-h200-8gpu-allreduce-sweep.yaml", "deepep-v1-normal-h800.yaml",
        "mamf-h100-bf16.yaml")]
    page = write_check_html(run_check(cases, fidelity="analytic"), tmp_path / "check")
    shot, _ = check_page_renders(page, tmp_path, "check", height_px=1600)
    print(f"screenshot: {shot}")


TRACE_CHECK_PAGE = """<!doctype html><html><body data-check="pending"><script>
var x = new XMLHttpRequest();
x.open('GET', 'trace.json');
x.onload = function () {
  try {
    var d = JSON.parse(x.responseText), n = 0, empty = 0, end = 0, s = 0, f = 0;
    d.traceEvents.forEach(function (e) {
      if (e.ph === 'X') { n++; if (!e.args || !Object.keys(e.args).length) empty++;
                          end = Math.max(end, e.ts + e.dur); }
      else if (e.ph === 's') s++; else if (e.ph === 'f') f++;
    });
    document.body.dataset.check = 'events=' + n + ' empty=' + empty + ' end_us=' +
      Math.round(end) + ' starts=' + s + ' finishes=' + f;
  } catch (err) { document.body.dataset.check = 'error ' + err; }
};
x.onerror = function () { document.body.dataset.check = 'error loading'; };
x.send();
</script></body></html>"""


def check_trace_opens(trace_path: Path, tmp_path: Path, name: str) -> dict[str, int]:
    """Load ``trace_path`` in chromium and parse it there; the page's counts."""
    page = trace_path.parent / "trace_check.html"
    page.write_text(TRACE_CHECK_PAGE, encoding="utf-8")
    run = subprocess.run([CHROMIUM, *OFFLINE_FLAGS, f"--user-data-dir={tmp_path / name}",
                          "--allow-file-access-from-files", "--js-flags=--max-old-space-size=4096",
                          f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", "--dump-dom",
                          page.resolve().as_uri()],
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    m = re.search(r'data-check="([^"]*)"', run.stdout)
    assert m is not None and "=" in m[1] and not m[1].startswith("error"), m and m[1]
    return {k: int(v) for k, v in (kv.split("=") for kv in m[1].split())}


def _des_trace(root: Path, tmp_path: Path, scenario: str):  # noqa: ANN202
    from moesim.engine import Simulation
    from moesim.report.trace import write_trace_file
    from moesim.specs.loader import load_scenario

    result = Simulation(load_scenario(root / "scenarios" / scenario), fidelity="des").run()
    return result, write_trace_file(result, tmp_path / "trace" / "trace.json")


def _assert_whole_step(counts: dict[str, int], result, info) -> None:  # noqa: ANN001
    assert counts["events"] == info.events == result.trace.ops_simulated
    assert counts["empty"] == 0
    assert abs(counts["end_us"] - result.step_time_s * 1e6) <= 0.01 * result.step_time_s * 1e6
    assert counts["starts"] == counts["finishes"] == info.flows


@needs_chromium
def test_default_scenario_trace_opens(tmp_path: Path, root: Path) -> None:
    result, info = _des_trace(root, tmp_path, "default.yaml")
    counts = check_trace_opens(info.path, tmp_path, "trace-default")
    _assert_whole_step(counts, result, info)
    assert info.flows > 0  # interleaved 1F1B: sends between the stages


@needs_chromium
@pytest.mark.slow
def test_deepseek_v3_trace_opens_whole(tmp_path: Path, root: Path) -> None:
    """The acceptance case: every op of the 2048-H800 step, the last within 1% of the step."""
    result, info = _des_trace(root, tmp_path, "deepseek-v3-2048xh800.yaml")
    counts = check_trace_opens(info.path, tmp_path, "trace-dsv3")
    _assert_whole_step(counts, result, info)
    print(f"DeepSeek-V3 trace: {info.events:,} events, {info.flows:,} flows, "
          f"{info.size_bytes / 1e6:.0f} MB")


@needs_chromium
def test_sortable_table_sorts_on_click(tmp_path: Path) -> None:
    """A header click sorts numerically (9 < 10), a second click reverses."""
    from moesim.report.assets import SORT_SCRIPT, TABLE_STYLE, head, write_page

    rows = "".join(f"<tr><td>{v}</td><td class='text'>{n}</td></tr>"
                   for v, n in ((10, "b"), (9, "a"), (100, "c")))
    click = ("<script>window.addEventListener('load',function(){var th="
             "document.querySelector('th');th.click();"
             "document.body.dataset.first=[].map.call(document.querySelectorAll('tbody tr td:"
             "first-child'),function(c){return c.textContent}).join(',');th.click();"
             "document.body.dataset.second=[].map.call(document.querySelectorAll('tbody tr td:"
             "first-child'),function(c){return c.textContent}).join(',');});</script>")
    page = write_page(tmp_path / "t" / "table.html", head("sort", TABLE_STYLE) + (
        "<table class='sortable'><thead><tr><th>n</th><th class='text'>name</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>{SORT_SCRIPT}{click}</body></html>"))
    run = _chromium(page.resolve().as_uri(), tmp_path / "profile-sort", ["--dump-dom"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'data-first="9,10,100"' in run.stdout and 'data-second="100,10,9"' in run.stdout


@needs_chromium
def test_serving_report_renders_offline(tmp_path: Path, root: Path) -> None:
    """A real serving run (the DeepSeek-V3 PD + EP scenario, 120 requests): headline, latency
    CDFs, timeline, iteration breakdown and memory all drawn offline."""
    from moesim.report.serving import serving_figure_div_ids, write_serving_report
    from moesim.serving import simulate_serving
    from moesim.specs.loader import load_scenario

    scenario = load_scenario(root / "scenarios" / "serving" / "deepseek-v3-96xh100-pd-ep.yaml",
                             ["workload.num_requests=120"])
    paths = write_serving_report(simulate_serving(scenario), tmp_path / "serving")
    shot, _ = check_page_renders(paths["html"], tmp_path, "report-serving",
                                 serving_figure_div_ids())
    print(f"screenshot: {shot}")

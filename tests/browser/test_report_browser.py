"""report.html in headless Chromium with no network: no script errors, every figure drawn.

Uses Debian's chromium (``apt-get install chromium``); skips with a message when it is absent.
The DOM is dumped after a virtual-time budget and every figure div must hold plotly's
``main-svg``; console errors are read from chromium's stderr log and from the page's own
``data-js-errors`` counter. The same run saves a screenshot in the test's tmp dir for a
human look. The second test renders the real default scenario (analytic fidelity).
"""

from __future__ import annotations

import importlib.util
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


def check_report_renders(html_path: Path, tmp_path: Path) -> Path:
    """Open ``html_path`` offline; assert every figure drew and no script failed.

    One chromium run dumps the DOM and saves the screenshot (returned).
    """
    shot = tmp_path / "report.png"
    run = _chromium(html_path.resolve().as_uri(), tmp_path / "profile",
                    ["--dump-dom", f"--screenshot={shot}", "--window-size=1400,4000"])
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    assert 'data-js-errors="0"' in dom, "the page counted uncaught script errors"
    assert not _console_errors(run.stderr), _console_errors(run.stderr)
    ids = figure_div_ids()
    for div_id, next_id in zip(ids, [*ids[1:], None], strict=True):
        assert "main-svg" in _figure_html(dom, div_id, next_id), f"{div_id} was not drawn"
    assert shot.stat().st_size > 50_000, "the screenshot is (nearly) blank"
    return shot


@pytest.mark.skipif(CHROMIUM is None,
                    reason="chromium not installed (apt-get install chromium); browser test skipped")
def test_fixture_report_renders_offline(tmp_path: Path) -> None:
    paths = write_report(_fixture_result(), tmp_path / "report")
    shot = check_report_renders(paths["html"], tmp_path)
    print(f"screenshot: {shot}")


@pytest.mark.skipif(CHROMIUM is None,
                    reason="chromium not installed (apt-get install chromium); browser test skipped")
def test_default_scenario_report_renders_offline(tmp_path: Path, root: Path) -> None:
    """The real default scenario through the engine (analytic fidelity: a few seconds)."""
    engine = pytest.importorskip("moesim.engine", reason="moesim.engine not available")
    from moesim.specs.loader import load_scenario

    scenario = load_scenario(root / "scenarios" / "default.yaml")
    result = engine.Simulation(scenario, fidelity="analytic").run()
    paths = write_report(result, tmp_path / "report")
    assert paths["html"].stat().st_size < 10_000_000
    shot = check_report_renders(paths["html"], tmp_path)
    print(f"screenshot: {shot}")

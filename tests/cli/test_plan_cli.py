"""``moesim sweep|plan|capacity`` end to end, with the closed-form fake engine of plan tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAKES_DIR = ROOT / "tests" / "unit" / "plan"
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
FAKE = ["--evaluator", "plan_fakes:evaluate"]
CLI = [sys.executable, "-c", "from moesim.cli.main import app; app()"]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKES_DIR), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def moesim(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True,
                          text=True, env=_env(**env), cwd=ROOT, timeout=120)


def _sweep(tmp: Path, eps: list[int], mbs: list[int], extra: str = "") -> Path:
    p = tmp / "sweep.yaml"
    p.write_text(f"name: t\nbase: {MIXTRAL.as_posix()}\n{extra}axes:\n"
                 f"  - {{path: parallelism.expert_parallel_degree, values: {eps}}}\n"
                 f"  - {{path: parallelism.micro_batch_size, values: {mbs}}}\n", encoding="utf-8")
    return p


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_bad_sweep_file_is_one_line_exit_2(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nbase: nowhere.yaml\naxes: [{path: a, values: [1]}]\n", encoding="utf-8")
    r = moesim("sweep", str(p), "--out", str(tmp_path / "o"), *FAKE)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "base=" in r.stderr


def test_invalid_point_recorded_exit_0(tmp_path: Path) -> None:
    r = moesim("sweep", str(_sweep(tmp_path, [3, 8], [1])), "--out", str(tmp_path / "o"),
               "--workers", "1", *FAKE)
    assert r.returncode == 0, r.stderr
    recs = {rec["overrides"]["parallelism.expert_parallel_degree"]: rec
            for rec in _lines(tmp_path / "o" / "points.jsonl")}
    assert recs[3]["status"] == "invalid" and "must divide" in recs[3]["error"]
    assert recs[8]["status"] == "ok"
    assert (tmp_path / "o" / "sweep.html").read_text(encoding="utf-8").count("<script") >= 2


def test_every_point_infeasible_exit_3(tmp_path: Path) -> None:
    # EP 1 on Mixtral: the fake memory model needs 87.7 GB > 85.5 GB (79.65 GiB) at both micro-batch sizes.
    r = moesim("sweep", str(_sweep(tmp_path, [1], [1, 2])), "--out", str(tmp_path / "o"),
               "--workers", "1", *FAKE)
    assert r.returncode == 3 and "infeasible" in r.stderr


def test_killed_sweep_resumes_without_duplicates(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [2, 4, 8], [1, 2, 4, 8], extra="fixed: {seed: 0}\n")
    out = tmp_path / "o"
    jsonl = out / "points.jsonl"
    cmd = [*CLI, "sweep", str(sweep), "--out", str(out),
           "--workers", "1", *FAKE]
    # Each point sleeps 0.3 s (plan_fakes honours PLAN_FAKES_SLEEP_S) so the kill lands midway.
    proc = subprocess.Popen(cmd, env=_env(PLAN_FAKES_SLEEP_S="0.3"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if jsonl.is_file() and len(jsonl.read_text(encoding="utf-8").splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    done_before = {rec["point_id"] for rec in _lines(jsonl)}
    assert 3 <= len(done_before) < 12
    r = moesim("sweep", str(sweep), "--out", str(out), "--workers", "1", *FAKE)
    assert r.returncode == 0, r.stderr
    assert f"{len(done_before)} already done, {12 - len(done_before)} computed" in r.stdout
    recs = _lines(jsonl)
    assert len(recs) == 12 and len({rec["point_id"] for rec in recs}) == 12
    csv_rows = (out / "points.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_rows) == 13


def test_ctrl_c_keeps_finished_points(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [2, 4, 8], [1, 2, 4, 8])
    out = tmp_path / "o"
    proc = subprocess.Popen([*CLI, "sweep", str(sweep),
                             "--out", str(out), "--workers", "2", *FAKE],
                            env=_env(PLAN_FAKES_SLEEP_S="0.3"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    jsonl = out / "points.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            jsonl.is_file() and len(jsonl.read_text(encoding="utf-8").splitlines()) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    n = len(_lines(jsonl))
    assert len((out / "points.csv").read_text(encoding="utf-8").splitlines()) == n + 1


def test_plan_json_counts(tmp_path: Path) -> None:
    r = moesim("plan", str(MIXTRAL), "--devices", "64", "--top", "5", "--json", "--workers", "1",
               "--out", str(tmp_path), "--memory", "plan_fakes:memory", *FAKE)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["top"]) == 5 and data["considered"] >= 500
    budget = 120  # DEFAULT_ANALYTIC_BUDGET
    assert data["ranked"] <= budget and data["ranked"] <= data["fitting"]
    over = data["excluded"].get("fits, not ranked: over the analytic budget", 0)
    assert over == data["fitting"] - data["ranked"]  # the fake engine excludes none it ranks
    assert sum(data["excluded"].values()) + data["ranked"] == data["considered"]
    html = Path(data["html"]).read_text(encoding="utf-8")
    assert "Pareto front" in html and "<table class='sortable' id='ranked'>" in html
    assert "<script src='plotly.min.js'" in html  # shared, beside the page, nothing fetched
    assert (Path(data["html"]).parent / "plotly.min.js").stat().st_size > 1_000_000


def test_plan_bad_devices_exit_2(tmp_path: Path) -> None:
    r = moesim("plan", str(MIXTRAL), "--devices", "100000", "--out", str(tmp_path), *FAKE)
    assert r.returncode == 2 and "valid: 1 to 64" in r.stderr


def test_capacity_json(tmp_path: Path) -> None:
    r = moesim("capacity", str(MIXTRAL), "--tokens", "1B", "--days", "1", "--json",
               "--workers", "1", "--memory", "plan_fakes:memory", "--out", str(tmp_path), *FAKE)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    # 1e9 tokens in one day need 1e9 / 86400 = 11,574 tokens/s; one 8-GPU node is enough
    # unless nothing fits on it, so the answer is the smallest size the fake memory allows.
    assert data["required_tokens_per_s"] == pytest.approx(1e9 / 86400)
    assert data["devices"] % 8 == 0 and data["tokens_per_s"] >= data["required_tokens_per_s"]
    # Ideal cost: devices x the topology's $2.9/device-hour x failure-free hours. By default a
    # size must also fit the day with failures and checkpoints priced (goodput).
    assert data["ideal_cost_usd"] == pytest.approx(
        data["devices"] * 2.9 * 1e9 / data["tokens_per_s"] / 3600)
    g = data["goodput"]
    assert g is not None and data["train_days"] == pytest.approx(g["goodput_days"])
    assert data["ideal_days"] <= data["train_days"] <= 1.0
    assert data["cost_usd"] == pytest.approx(g["goodput_cost_usd"])
    assert data["cost_usd"] >= data["ideal_cost_usd"]
    assert data["energy_mwh"] == pytest.approx(g["goodput_energy_mwh"])
    assert data["energy_mwh"] > 0
    assert Path(data["html"]).is_file()


def test_capacity_ideal_is_the_failure_free_answer(tmp_path: Path) -> None:
    r = moesim("capacity", str(MIXTRAL), "--tokens", "1B", "--days", "1", "--json", "--ideal",
               "--workers", "1", "--memory", "plan_fakes:memory", "--out", str(tmp_path), *FAKE)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["goodput"] is None and data["train_days"] == pytest.approx(data["ideal_days"])
    assert data["cost_usd"] == pytest.approx(data["ideal_cost_usd"])


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has finished)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
def test_kill_9_of_the_parent_leaves_no_worker(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [2, 4, 8], [1, 2, 4, 8])
    out = tmp_path / "o"
    jsonl = out / "points.jsonl"
    proc = subprocess.Popen([*CLI, "sweep", str(sweep), "--out", str(out), "--workers", "2",
                             *FAKE], env=_env(PLAN_FAKES_SLEEP_S="0.5"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            jsonl.is_file() and len(jsonl.read_text(encoding="utf-8").splitlines()) >= 2):
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers
    proc.kill()  # SIGKILL to the parent only: the workers are not in its signal's reach
    proc.wait(timeout=30)
    time.sleep(5)
    assert not [w for w in workers if _alive(w)], "a sweep worker outlived its parent by 5 s"
    done_before = len(_lines(jsonl))
    r = moesim("sweep", str(sweep), "--out", str(out), "--workers", "2", *FAKE)
    assert r.returncode == 0, r.stderr
    assert f"{done_before} already done, {12 - done_before} computed" in r.stdout
    recs = _lines(jsonl)
    assert len(recs) == 12 and len({rec["point_id"] for rec in recs}) == 12
    rows = (out / "points.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sorted(int(x.split(",")[0]) for x in rows) == list(range(12))


def test_rerun_after_a_base_edit_recomputes(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    text = MIXTRAL.read_text(encoding="utf-8")
    base.write_text(text.replace("../topologies/", f"{ROOT}/topologies/").replace(
        "models/", f"{ROOT}/scenarios/models/"), encoding="utf-8")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: t\nbase: {base.as_posix()}\naxes:\n"
                     "  - {path: parallelism.expert_parallel_degree, values: [2, 4, 8]}\n",
                     encoding="utf-8")
    args = ["sweep", str(sweep), "--out", str(tmp_path / "o"), "--workers", "1", *FAKE]
    assert "0 already done, 3 computed" in moesim(*args).stdout
    assert "3 already done, 0 computed" in moesim(*args).stdout
    base.write_text(base.read_text(encoding="utf-8").replace("global_batch_size: 256",
                                                             "global_batch_size: 512"),
                    encoding="utf-8")
    assert "0 already done, 3 computed" in moesim(*args).stdout
    assert "0 already done, 3 computed" in moesim(*args, "--fresh").stdout


def test_sweep_name_stays_inside_reports(tmp_path: Path) -> None:
    sweep = _sweep(tmp_path, [8], [1]).read_text(encoding="utf-8").replace("name: t",
                                                                           "name: ../../x")
    (tmp_path / "s.yaml").write_text(sweep, encoding="utf-8")
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    r = subprocess.run([*CLI, "sweep", str(tmp_path / "s.yaml"), "--workers", "1", *FAKE],
                       capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (cwd / "reports/sweeps/x/points.csv").is_file()
    assert not (tmp_path / "x").exists() and not (cwd / "x").exists()

"""The wheel as a new user gets it: built, installed into a fresh venv, run from an empty folder.

The wheel is built with ``pip wheel . --no-deps --no-build-isolation`` (the build needs only
setuptools, which the test environment has, so no network) and installed with ``--no-deps
--no-index`` into ``python -m venv --system-site-packages``: the venv reuses numpy, pydantic
and the rest from the environment running the tests (installing them again would download
about 100 MB per run), while moesim itself comes from the wheel, which the test asserts (a
moesim installed in the environment, editable or not, must not be the one that runs). Every
command runs in an empty directory with ``PYTHONPATH`` unset, so nothing of the checkout can
be found except through the wheel. About 45 s on 2 cores, most of it ``moesim check``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from moesim import shipped

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _shipped_files(folder: str) -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*")
                  if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".md"))


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    made = [p for p in (ROOT / "build", ROOT / "moesim.egg-info") if not p.exists()]
    try:
        build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                                "--no-build-isolation", "-q", "-w", str(dist)], env=_env(),
                               capture_output=True, text=True, timeout=300, check=False)
    finally:  # what the build left in the checkout (an egg-info there shadows the install)
        for p in made:
            shutil.rmtree(p, ignore_errors=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("moesim-*.whl")
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)],
                   check=True, timeout=120)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--force-reinstall", str(wheel)], env=_env(), check=True, timeout=300,
                   capture_output=True)
    empty = tmp / "empty"
    empty.mkdir()
    return {"wheel": wheel, "python": py, "moesim": env_dir / "bin" / "moesim", "cwd": empty,
            "venv": env_dir}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "MOESIM_DEBUG")}


def _moesim(v: dict[str, Path], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(v["moesim"]), *args], cwd=v["cwd"], env=_env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_wheel_holds_every_shipped_file(venv: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(venv["wheel"]).namelist())
    for folder in shipped.DATA_FOLDERS:
        for rel in _shipped_files(folder):
            assert f"moesim/_data/{rel}" in names, rel
    assert "moesim/_build_version.py" in names


def test_installed_moesim_is_the_wheel(venv: dict[str, Path]) -> None:
    code = "import moesim, moesim.shipped as s; print(moesim.__file__); print(s.data_root())"
    run = subprocess.run([str(venv["python"]), "-c", code], cwd=venv["cwd"], env=_env(),
                         capture_output=True, text=True, timeout=60, check=True)
    module, data = run.stdout.split()
    assert Path(module).is_relative_to(venv["venv"])
    assert Path(data) == Path(module).parent / "_data"


def test_topology_list_shows_every_shipped_system(venv: dict[str, Path]) -> None:
    run = _moesim(venv, "topology", "list", "--json")
    assert run.returncode == 0, run.stderr
    names = [r["name"] for r in json.loads(run.stdout)]
    assert names == sorted(p.stem for p in (ROOT / "topologies").glob("*.yaml"))
    assert len(names) >= 10
    show = _moesim(venv, "topology", "show", names[0])
    assert show.returncode == 0 and names[0] in show.stdout, show.stderr


def test_run_default_and_by_name(venv: dict[str, Path]) -> None:
    run = _moesim(venv, "run")
    assert run.returncode == 0, run.stderr
    result = next((venv["cwd"] / "reports").glob("default*/result.json"))
    data = json.loads(result.read_text(encoding="utf-8"))
    assert data["scenario"] == "default" and data["step_time_s"] > 0
    by_name = _moesim(venv, "run", "mixtral-8x7b-64xh100", "--fidelity", "analytic", "--json")
    assert by_name.returncode == 0, by_name.stderr
    assert json.loads(by_name.stdout)["scenario"] == "mixtral-8x7b-64xh100"


def test_check_runs_every_case(venv: dict[str, Path]) -> None:
    run = _moesim(venv, "check", "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(run.stdout)
    assert data["failed"] == []
    # every published file was checked: it gave points, or holds none (a ratio case's inputs)
    cases = {r["case"] for r in data["rows"]} | {Path(f).stem for f in data["skipped"]}
    assert cases == {p.stem for p in (ROOT / "scenarios" / "published").glob("*.yaml")}

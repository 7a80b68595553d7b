"""Every command the README shows runs as written.

The commands are read from README.md: every line of its ``bash`` blocks (``&&`` chains split)
and every inline `moesim ...` or `python ...` span with arguments. They run in README order
from one fresh folder that links the checkout's ``scenarios/``, ``topologies/``, ``calibration/`` and
``docs/`` (so the README's relative paths hold and its outputs land in that folder), and
must exit 0. The README's ``python`` block runs as a script the same way. What is not run
says why in :data:`NOT_RUN`; a synopsis with placeholders (``SCENARIO``, ``[--json]``,
``des\\|analytic``) or a bare command name in prose (`moesim check`) is a reference, not a
command. A new README command is run unless it is added there with its reason.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LINKED = ("scenarios", "topologies", "calibration", "docs")

NOT_RUN = {
    "pip install -e .": "installs into the environment; tests/cli/test_wheel_install.py "
                        "installs the wheel into a fresh venv instead",
    "pip install torch==2.13.0": "installs; CI's .ci/run runs this line itself",
    'pip install -e ".[dev,profile,ray]"': "installs; CI's .ci/run runs this line itself",
    "python -m pytest -q": "the test suite this test is part of",
    "pip install moesim-*.whl": "installs; tests/cli/test_wheel_install.py does it in a venv",
    "moesim --install-completion": "writes into the user's shell start-up file",
    "python scripts/gen_check_table.py --write README.md": "rewrites README.md; "
        "tests/validation/test_check_suite.py checks the block it writes",
    "python scripts/gen_check_table.py": "the whole published suite (about 20 s); "
        "tests/validation/test_check_suite.py runs the same check",
    "python benchmarks/fuzz_specs.py --inputs 10000 --jobs 2 --seed 0": "a 30-minute fuzz "
        "run; tests/properties/test_cli_fuzz.py runs 60 inputs of it",
    "python benchmarks/fuzz_specs.py --inputs 1500 --jobs 1 --seed 7": "an 11-minute fuzz "
        "run; tests/properties/test_cli_fuzz.py runs 60 inputs of it",
    "moesim calibrate import-aiconfigurator --system h100_sxm": "needs aiconfigurator-core "
        "(the `aiconfigurator` extra), which CI does not install; tests/unit/compute runs the "
        "converter on a table it writes",
}
# The README's synopses name what to put where in capitals; so do the prose references.
PLACEHOLDER = re.compile(r"\b(SCENARIO|SWEEP|TOPOLOGY|OP|N|K|M|D|X|P=V|DIR|FILE|RESULT|NAME|"
                         r"TABLE|CONFIG|FIELD|PATHS|COMMAND)\b|\[|\\\||\.\.\.")


def _bash_lines() -> list[str]:
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            out += [part.strip() for part in line.split("&&") if part.strip()]
    return out


def _inline() -> list[str]:
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", prose)
    # a bare command name in prose ("`moesim check` runs every case") refers to the command
    return [s for s in spans if re.match(r"(moesim|python|pip) \S", s) and len(s.split()) >= 3]


def commands() -> list[str]:
    every = list(dict.fromkeys(_bash_lines() + _inline()))
    return [c for c in every if c in NOT_RUN or not PLACEHOLDER.search(c)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module: the commands run in README order, and a later one may
    read what an earlier one wrote (`moesim report` the run's result.json)."""
    tmp = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp


@pytest.fixture
def cwd(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(folder)
    return folder


def test_readme_has_commands() -> None:
    cmds = commands()
    assert len(cmds) >= 20, cmds
    assert "moesim run" in cmds and any(c.startswith("moesim capacity") for c in cmds)


@pytest.mark.parametrize("command", commands())
def test_readme_command_runs(command: str, cwd: Path) -> None:
    if command in NOT_RUN:
        pytest.skip(NOT_RUN[command])
    argv = shlex.split(command)
    assert argv[0] == "moesim", f"a README command moesim cannot run: {command}"
    res = CliRunner().invoke(app, argv[1:])
    assert res.exit_code == 0, f"{command}: {res.output[-2000:]}"


def test_readme_python_block_runs(cwd: Path) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", README, re.S)
    (cwd / "readme_example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "readme_example.py"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    if run.returncode and "needs pandas" in run.stderr:
        pytest.skip("pandas is not installed (to_dataframe needs it)")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (cwd / "reports" / "mine" / "report.html").exists()

"""Speed of the command line: ``moesim run`` on the shipped default scenario and ``moesim --help``.

Run: python benchmarks/bench_cli.py [--runs 5] [--fresh] [--command moesim]

Every call is a fresh process, as a user's shell starts it: by default this checkout's
moesim (``python -c "from moesim.cli.main import app; app()" ...`` with the checkout first on
PYTHONPATH), or ``--command`` (e.g. ``moesim``, an installed console script). ``moesim run``
writes its report into one temporary folder (``--fresh``: a new folder for every run, so
plotly.min.js is written each time instead of found unchanged); one untimed run first warms
the page cache. The checkout's bytecode is compiled first (``compileall``: what the first import
does wherever Python may write it, and pip does at install), so no run pays for compiling
moesim's sources. Printed for each command: the best and the median of ``--runs`` wall seconds
(time.perf_counter around the process), the CPU seconds of that best run (user + system,
resource.getrusage RUSAGE_CHILDREN), the peak RSS of the largest run (ru_maxrss) and the load
average (os.getloadavg) before and after, since other processes on the machine slow it down.
Targets (README, "Speed"): ``moesim run`` <= 0.8 s wall, ``moesim --help`` <= 0.4 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "from moesim.cli.main import app; app()"


def command(args: list[str], console_script: str | None) -> list[str]:
    if console_script:
        return [*shlex.split(console_script), *args]
    return [sys.executable, "-c", ENTRY, *args]


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``cmd``; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def bench(label: str, args: list[str], runs: int, fresh: bool, console_script: str | None,
          env: dict[str, str]) -> None:
    cmd = command(args, console_script)
    with tempfile.TemporaryDirectory(prefix="moesim-bench-") as tmp:
        shared = Path(tmp) / "shared"
        shared.mkdir()
        timed(cmd, shared, env)  # untimed: page cache, and the shared folder's plotly.min.js
        load_before = os.getloadavg()
        samples = []
        for i in range(runs):
            cwd = shared
            if fresh:
                cwd = Path(tmp) / f"run{i}"
                cwd.mkdir()
            samples.append(timed(cmd, cwd, env))
        load_after = os.getloadavg()
    best_wall, best_cpu = min(samples)
    rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(f"{label}: best {best_wall:.3f} s wall, {best_cpu:.3f} s CPU (that run); median "
          f"{statistics.median(w for w, _ in samples):.3f} s wall over {runs} runs; peak RSS "
          f"{rss_mib:.0f} MiB; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per command (best of N)")
    ap.add_argument("--fresh", action="store_true",
                    help="a new report folder for every run of `moesim run`")
    ap.add_argument("--command", default=None,
                    help="run this command instead of the checkout's moesim (e.g. moesim)")
    a = ap.parse_args()
    env = dict(os.environ)
    if not a.command:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "moesim")],
                       check=True, stdout=subprocess.DEVNULL)
    print(f"{sys.executable} {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    bench("moesim --help", ["--help"], a.runs, False, a.command, env)
    bench("moesim run (default scenario)", ["run"], a.runs, a.fresh, a.command, env)


if __name__ == "__main__":
    main()

"""Fuzz the command line with mutated specs: no traceback, bad exit, hang or memory blow-up.

    python benchmarks/fuzz_specs.py [--inputs 10000] [--jobs 2] [--seed 0] [--out DIR]

Each input is a shipped scenario (with copies of the topology and model it names) with one to
three mutations of the scenario, its topology or its model: deleted fields, wrong types,
zero / negative / huge / NaN / inf numbers, unknown keys and kinds, deep nesting, YAML anchors
and alias bombs, duplicate keys, enormous lists and strings, non-UTF-8 bytes, folders for files,
missing references, files that are not specs, python tags, names that are paths, and bad
``--set`` and option values. Every input runs ``validate`` (on the mutated file),
``run --fidelity analytic``, ``memory`` and ``routing``, each in its own forked process (the
parent imported moesim once) with its working folder inside the input's folder.

Counted per command run: a Python traceback on stderr; a bad exit (a signal, or an exit code
other than 0, 2 and 3: moesim's "internal error" is 70); a hang (over 30 s of wall time; a run
is killed at 120 s), and separately a run over 30 s of CPU time; peak memory over 2 GiB (the child's maxrss); a message that is not one
line, is 500 characters or longer, names no file, or names no field (a field path, an option
or a line of the file); a file written outside ``reports/`` of the working folder; a python tag
that ran. Prints the counts, CPU seconds, wall time and load average; ``--out`` keeps the
reproducers of every failed run and a JSON summary. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one thread per child
os.environ.setdefault("OMP_NUM_THREADS", "1")

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GIB = 1 << 30
HANG_S = 30.0
KILL_S = 120.0
MAX_MESSAGE = 500
ABS_NAME = Path("/tmp/fuzz-abs")  # a scenario named by this absolute path must not create it

HUGE_INT = [10**9, 10**18, 2**53 + 1, 10**30, 2**63, 2**64 + 7]
NUMBERS: list[Any] = [0, -1, -7, -1e9, 1e-9, 1e-300, 0.5, 1.5, 3, 7, 1e308, 1e18, 1e9,
                      float("nan"), float("inf"), float("-inf"), *HUGE_INT]
STRINGS = ["", "x", "bogus", "../../x", "/etc/passwd", "x" * 5000, "a\x00b", "2024-13-45",
           "1e400", "[/]", "fat_tree", "torus", "dualpipe", "zipf", "mla", "nvswitch",
           "\u202e\u00e9\u4e2d", "models", "../topologies"]
KINDS = ["bogus", "", "nvswitch", "fat_tree", "torus", "dcn", "gqa", "mla", "gpipe", "1f1b",
         "interleaved_1f1b", "dualpipe", "direct", "hierarchical", "deepep", "top_k",
         "expert_choice", "hash", "balanced", "multinomial", "zipf", "dirichlet", "histogram",
         "x" * 3000]
UNKNOWN_KEYS = ["bogus", "nic_gbps", "zero_stag", "hbm_gb", "latency_ms", "x" * 200,
                "root:*:19000:0:99999:7::", "num_experts_", "tiers_extra"]
SET_PATHS = ["seed", "num_devices", "parallelism.expert_parallel_degree",
             "parallelism.pipeline_parallel_degree", "parallelism.tensor_parallel_degree",
             "parallelism.moe_overlap_chunks", "parallelism.micro_batch_size",
             "parallelism.pipeline_schedule", "parallelism.pipeline_schedule.kind",
             "parallelism.all_to_all.num_sms", "workload.global_batch_size",
             "workload.sequence_length", "workload.dtype", "routing.capacity_factor",
             "routing.load", "routing.load.kind", "routing.num_redundant_experts",
             "routing.max_nodes_per_token", "model.num_experts", "model.num_layers",
             "model.top_k", "model.hidden_size", "model.attention.head_dim",
             "topology.tiers.1.num_domains", "topology.tiers.0.latency_us",
             "topology.accelerator.hbm_capacity_gib", "topology_overrides", "model", "topology",
             "description", "name", "a.b.c", "calibration", "routing.load.path"]
BAD_SETS = ["a..b=1", "=3", "x", "seed", "parallelism.=2", "tiers.999.x=1",
            "model.attention.kind.x=1", "description=" + "[" * 700 + "]" * 700,
            "routing.load=!!python/object/apply:os.system [touch PWNED]",
            "name=!!binary aGVsbG8=", "seed=" + "9" * 5000, "x" * 3000 + "=1"]
OPTIONS = {"--draws": ["-1", "0", "1", "3", "1000000000", "abc", "1e3"],
           "--micro-batches": ["-1", "0", "1", "2", "1000000000", "x"],
           "--fidelity": ["analytic", "analytic", "analytic", "bogus", ""]}


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` lists deep, written into the YAML text as brackets."""

    depth: int


def _deep(depth: int) -> Deep:
    return Deep(depth)


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"lol{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    """One fuzz input: a folder of files, the mutated file, and the commands to run."""

    index: int
    folder: Path
    scenario: Path
    target: Path
    mutations: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


# --- building inputs ---------------------------------------------------------------------------

def _bases() -> list[dict[str, Any]]:
    out = []
    for f in sorted((ROOT / "scenarios").glob("*.yaml")):
        scen = yaml.safe_load(f.read_text())
        topo_path = (f.parent / scen["topology"]).resolve()
        model_path = (f.parent / scen["model"]).resolve()
        out.append({"name": f.name, "scenario": scen,
                    "topology": (topo_path.name, yaml.safe_load(topo_path.read_text())),
                    "model": (model_path.name, yaml.safe_load(model_path.read_text()))})
    return out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if len(prefix) > 8:  # inside a value an earlier mutation nested deep
        return out
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list) and len(node) < 64:
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _value(rng: random.Random, case_dir: Path) -> tuple[str, Any]:
    r = rng.random()
    if r < 0.45:
        v = rng.choice(NUMBERS)
        return f"number {v!r}", v
    if r < 0.6:
        v = rng.choice(STRINGS)
        return f"string {v[:20]!r}", v
    if r < 0.7:
        return "wrong type", rng.choice([True, None, [], {}, [1, 2], {"a": 1}, "1", 1.0])
    if r < 0.76:
        return "deep nesting", _deep(rng.choice([40, 600, 3000]))
    if r < 0.82:
        return "enormous list", [1] * rng.choice([10_000, 200_000])
    if r < 0.9:
        return "reference", rng.choice([str(case_dir / "missing.yaml"), str(case_dir),
                                        "/etc/passwd", "/etc/hostname", "/dev/null",
                                        str(case_dir.parent / "big.yaml"),
                                        str(case_dir.parent / "bomb.yaml"),
                                        str(case_dir.parent / "deep.json"),
                                        "../" * 30 + "etc/passwd"])
    return "kind", {"kind": rng.choice(KINDS)}


def _mutate_doc(rng: random.Random, doc: Any, case_dir: Path, scale_only: bool = False) -> str:
    paths = _paths(doc)
    path = rng.choice(paths)
    op = "scale" if scale_only else rng.choices(
        ["drop", "replace", "add", "kind", "name", "scale"], weights=[2, 6, 2, 1, 1, 8])[0]
    if op == "scale":  # a real-looking but extreme number: keeps many inputs valid
        numeric = [p for p in paths if p and _is_number(_get(doc, p))]
        if numeric:
            path = rng.choice(numeric)
            old = _get(doc, path)
            new = old * rng.choice(SCALES)
            new = int(round(new)) if isinstance(old, int) and abs(new) < 1e300 else new
            _get(doc, path[:-1])[path[-1]] = new
            return f"{'.'.join(map(str, path))} x{new / old if old else 0:g} = {new!r:.30}"
        op = "replace"
    if op == "name" and isinstance(doc, dict):
        doc["name"] = rng.choice(["../../x", str(ABS_NAME), "..", "[/]x", "a/b/../../c",
                                  "x" * 5000, ""])
        return f"name={str(doc['name'])[:20]!r}"
    if not path:
        what, v = _value(rng, case_dir)
        return f"replaced the document by {what}" if _set_root(doc, v) else "no-op"
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    dotted = ".".join(str(p) for p in path)
    if op == "drop":
        if isinstance(parent, dict):
            del parent[last]
        else:
            parent.pop(last)
        return f"dropped {dotted}"
    if op == "add" and isinstance(parent, dict):
        key = rng.choice(UNKNOWN_KEYS)
        parent[key] = rng.choice(NUMBERS + STRINGS[:4])
        return f"unknown key {key[:20]!r} beside {dotted}"
    if op == "kind" and isinstance(parent, dict):
        parent["kind"] = rng.choice(KINDS)
        return f"kind={parent['kind'][:20]!r} at {dotted}"
    what, v = _value(rng, case_dir)
    parent[last] = v
    return f"{dotted} = {what}"


SCALES = [0, 2, 3, 4, 16, 256, 4096, 65536, 2**20, 0.5, 1 / 16, 1e-6, 1e6, 1e12, -1]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _set_root(doc: Any, v: Any) -> bool:
    if isinstance(doc, dict) and isinstance(v, dict):
        doc.clear()
        doc.update(v)
        return True
    return False


def _dump(doc: Any) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(float, _float_repr)
    Dumper.add_representer(Deep, lambda d, v: d.represent_scalar(
        "tag:yaml.org,2002:str", f"__DEEP_{v.depth}__"))
    text = yaml.dump(doc, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=10**9)
    # PyYAML's emitter recurses, so deep values are written here as flow brackets
    return re.sub(r"__DEEP_(\d+)__", lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text)


def _float_repr(dumper: Any, value: float) -> Any:
    if value != value:
        text = ".nan"
    elif value in (float("inf"), float("-inf")):
        text = ".inf" if value > 0 else "-.inf"
    else:
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")  # YAML 1.1 floats need a dot
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


def _text_mutation(rng: random.Random, text: str) -> tuple[str, bytes]:
    r = rng.random()
    if r < 0.15:
        return "alias bomb", (billion_laughs(rng.choice([6, 9])) + text).encode()
    if r < 0.3:
        first = next((ln for ln in text.splitlines() if ln and not ln.startswith(" ")), "a: 1")
        return "duplicate key", (text + first + "\n").encode()
    if r < 0.4:
        cut = rng.randrange(len(text) + 1)
        return "non-UTF-8", text[:cut].encode() + bytes([0xFF, 0xFE, 0xC3]) + text[cut:].encode()
    if r < 0.5:
        return "python tag", (text + "pwn: !!python/object/apply:os.system ['touch PWNED']\n"
                              ).encode()
    if r < 0.58:
        return "binary tag", text.replace("model:", "model: !!binary aGVsbG8=\nx_model:", 1
                                          ).encode()
    if r < 0.7:
        cut = rng.randrange(len(text) + 1)
        return "truncated", (text[:cut] + rng.choice(["{", "]", ": :", "\t", "&a *b", "'", "- "])
                             ).encode()
    if r < 0.8:
        return "anchors", (text + "anch: &z {a: 1}\nref: [*z, *z, *undefined]\n").encode()
    if r < 0.9:
        return "3 MB file", (text + "# " + "x" * 3_000_000 + "\n").encode()
    return "two documents", (text + "---\n" + text).encode()


def build_case(rng: random.Random, bases: list[dict[str, Any]], index: int, root: Path) -> Case:
    base = rng.choice(bases)
    folder = root / f"case{index:06d}"
    for sub in ("scenarios/models", "topologies", "a/b/cwd"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    scen = copy.deepcopy(base["scenario"])
    topo_name, topo = base["topology"][0], copy.deepcopy(base["topology"][1])
    model_name, model = base["model"][0], copy.deepcopy(base["model"][1])
    scen["topology"] = f"../topologies/{topo_name}"
    scen["model"] = f"models/{model_name}"
    docs = {"scenario": scen, "topology": topo, "model": model}
    files = {"scenario": folder / "scenarios" / base["name"],
             "topology": folder / "topologies" / topo_name,
             "model": folder / "scenarios/models" / model_name}
    which = rng.choices(["scenario", "topology", "model"], weights=[5, 3, 2])[0]
    muts = [f"{base['name']}: {which}"]
    # A quarter of the inputs only scale numbers (real-looking, extreme, often still valid):
    # they reach the engine, where overflows and blow-ups live; the rest break the spec.
    scale_only = rng.random() < 0.25
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        muts.append(_mutate_doc(rng, docs[which], folder, scale_only))
    texts = {k: _dump(v) for k, v in docs.items()}
    raw = {k: t.encode() for k, t in texts.items()}
    if not scale_only and rng.random() < 0.25:
        what, raw[which] = _text_mutation(rng, texts[which])
        muts.append(what)
    for k, f in files.items():
        f.write_bytes(raw[k])
    case = Case(index, folder, files["scenario"], files[which], muts)
    case.commands = _commands(rng, case, plain=scale_only)
    return case


def _commands(rng: random.Random, case: Case, plain: bool = False) -> list[list[str]]:
    sets: list[str] = []
    if not plain and rng.random() < 0.3:
        for _ in range(rng.choice([1, 1, 2])):
            if rng.random() < 0.25:
                sets.append(rng.choice(BAD_SETS))
            elif rng.random() < 0.5:
                sets.append(f"{rng.choice(SET_PATHS)}={rng.choice([1, 2, 3, 8, 64, 4096, 2**20, 0.5])}")
            else:
                _, v = _value(rng, case.folder)
                if isinstance(v, Deep):
                    v = "[" * v.depth + "]" * v.depth
                text = v if isinstance(v, str) else json.dumps(v, allow_nan=True)
                text = text.replace("NaN", ".nan").replace("-Infinity", "-.inf").replace(
                    "Infinity", ".inf")
                sets.append(f"{rng.choice(SET_PATHS)}={text}")
    set_args = [a for s in sets for a in ("--set", s)]
    scen, target = str(case.scenario), str(case.target)
    fidelity = "analytic" if rng.random() < 0.9 else rng.choice(OPTIONS["--fidelity"])
    routing_opts: list[str] = []
    for opt in ("--draws", "--micro-batches"):
        if rng.random() < 0.15:
            routing_opts += [opt, rng.choice(OPTIONS[opt])]
    if rng.random() < 0.03:  # a folder where a file belongs
        target = str(case.folder / "scenarios")
    return [["validate", target, *set_args],
            ["run", scen, "--fidelity", fidelity, *set_args],
            ["memory", scen, *set_args],
            ["routing", scen, *routing_opts, *set_args]]


# --- running one command in a forked child --------------------------------------------------

@dataclass
class Run:
    case: int
    args: list[str]
    code: int | None = None
    signal: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    maxrss_bytes: int = 0
    stderr: str = ""
    killed: bool = False


def _child(args: list[str], cwd: Path, out: Path, err: Path) -> None:  # pragma: no cover
    try:
        os.chdir(cwd)
        for fd, path in ((1, out), (2, err)):
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(f, fd)
            os.close(f)
        resource.setrlimit(resource.RLIMIT_AS, (6 * GIB, 6 * GIB))  # a runaway is stopped
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from moesim.cli.main import app

        code = 0
        try:
            app(args, prog_name="moesim")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what escapes moesim: printed as Python would
            import traceback

            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if "code" in locals() else 99)


class Runner:
    """Keeps up to ``jobs`` forked children running; returns finished runs."""

    def __init__(self, jobs: int, scratch: Path) -> None:
        self.jobs = jobs
        self.scratch = scratch
        self.live: dict[int, tuple[Run, float, Path, Path]] = {}
        self.serial = 0

    def start(self, run: Run, cwd: Path) -> None:
        self.serial += 1
        out = self.scratch / f"{self.serial}.out"
        err = self.scratch / f"{self.serial}.err"
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            _child(run.args, cwd, out, err)
        self.live[pid] = (run, time.monotonic(), out, err)

    def reap(self, block: bool) -> list[Run]:
        done = []
        while self.live:
            pid, status, usage = os.wait4(-1, 0 if block and not done else os.WNOHANG)
            if pid == 0:
                self._kill_overdue()
                if block and not done:
                    time.sleep(0.02)
                    continue
                break
            run, t0, out, err = self.live.pop(pid)
            run.wall_s = time.monotonic() - t0
            run.cpu_s = usage.ru_utime + usage.ru_stime
            run.maxrss_bytes = usage.ru_maxrss * 1024
            if os.WIFSIGNALED(status):
                run.signal = os.WTERMSIG(status)
            else:
                run.code = os.WEXITSTATUS(status)
            run.stderr = err.read_text(errors="replace")[:20000]
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)
            done.append(run)
            block = False
        return done

    def _kill_overdue(self) -> None:
        now = time.monotonic()
        for pid, (run, t0, _, _) in list(self.live.items()):
            if now - t0 > KILL_S and not run.killed:
                run.killed = True
                os.kill(pid, signal.SIGKILL)


# --- judging a run ---------------------------------------------------------------------------

def _field_names() -> set[str]:
    from pydantic import BaseModel

    from moesim.specs.scenario import ScenarioSpec
    from moesim.specs.sweep import SweepSpec

    names: set[str] = set()
    todo: list[Any] = [ScenarioSpec, SweepSpec]
    seen: set[Any] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for name, f in cls.model_fields.items():
            names.add(name)
            todo += [a for a in _leaves(f.annotation)
                     if isinstance(a, type) and issubclass(a, BaseModel)]
    return names


def _leaves(tp: Any) -> list[Any]:
    import typing

    args = typing.get_args(tp)
    return [tp] if not args else [x for a in args for x in _leaves(a)]


_POSITION = re.compile(r"line \d+|offset \d+|--[a-z-]+|--set|top level|not a (topology|model)"
                       r" file|file not found|is a folder|larger than|not UTF-8|"
                       r"more than one YAML document|cannot read the file")


def judge(run: Run, case: Case, fields: set[str]) -> list[str]:
    """What is wrong with ``run`` (empty: nothing)."""
    bad = []
    text = run.stderr
    if "Traceback (most recent call last)" in text:
        bad.append("traceback")
    if run.signal is not None or run.code not in (0, 2, 3):
        bad.append("bad exit")
    if run.wall_s > HANG_S:
        bad.append("hang")
    if run.cpu_s > HANG_S:
        bad.append("cpu over 30 s")
    if run.maxrss_bytes > 2 * GIB or "ran out of memory" in text:
        bad.append("over 2 GiB")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("moesim: error: ")]
    if run.code in (2, 3) and "traceback" not in bad:
        if len(lines) != 1 or len(errors) != 1:
            bad.append("message not one line")
        for ln in errors:
            if len(ln) >= MAX_MESSAGE:
                bad.append("message too long")
            body = ln.removeprefix("moesim: error: ")
            usage = body.startswith("moesim ")
            # the input's files, the shared side files beside the cases, or a system file
            named = [str(p) for p in (case.scenario, case.target)] + [
                "/etc/", "/dev/", str(case.folder.parent)]
            if not usage and not any(n in body for n in named) and not body.startswith("..."):
                bad.append("message names no file")
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", body))
            if not usage and not (words & fields) and not _POSITION.search(body):
                bad.append("message names no field")
    return bad


def stray_outputs(case: Case) -> list[str]:
    """Files under the case folder that neither were inputs nor are under a/b/cwd/reports."""
    allowed = case.folder / "a/b/cwd/reports"
    inputs = set((case.folder / "scenarios").rglob("*")) | set(
        (case.folder / "topologies").rglob("*"))
    out = []
    for p in case.folder.rglob("*"):
        if p.is_dir() or p in inputs or allowed in p.parents:
            continue
        out.append(str(p.relative_to(case.folder)))
    return out


# --- the driver ---------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="keep reproducers and a summary here")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    import moesim.cli.main  # noqa: F401  - import once; every child is a fork of this process
    import moesim.cluster  # noqa: F401  - the CLI imports these only when a command runs
    import moesim.compute  # noqa: F401
    import moesim.engine  # noqa: F401
    import moesim.memory  # noqa: F401
    import moesim.network  # noqa: F401
    import moesim.plan  # noqa: F401
    import moesim.report  # noqa: F401
    import moesim.routing  # noqa: F401

    fields = _field_names()
    bases = _bases()
    scratch = Path(tempfile.mkdtemp(prefix="moesim-fuzz-"))
    (scratch / "cases").mkdir()
    (scratch / "cases" / "big.yaml").write_text("a: [" + "1," * 1_600_000 + "1]\n")  # 3.2 MB
    (scratch / "cases" / "bomb.yaml").write_text(billion_laughs())
    (scratch / "cases" / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    runner = Runner(a.jobs, scratch / "io")
    (scratch / "io").mkdir()
    counts: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    messages: list[str] = []
    longest = 0
    max_wall = max_rss = 0.0
    cpu = 0.0
    load0, t0 = os.getloadavg(), time.monotonic()
    pending: dict[int, tuple[Case, int]] = {}  # case index -> (case, runs left)
    cases = (build_case(random.Random(a.seed * 1_000_003 + i), bases, i, scratch / "cases")
             for i in range(a.inputs))
    queue: list[tuple[Case, list[str]]] = []

    def finish(run: Run) -> None:
        nonlocal longest, max_wall, max_rss, cpu
        case, left = pending[run.case]
        counts["command runs"] += 1
        cpu += run.cpu_s
        max_wall, max_rss = max(max_wall, run.wall_s), max(max_rss, run.maxrss_bytes)
        for ln in run.stderr.splitlines():
            if ln.startswith("moesim: error: "):
                longest = max(longest, len(ln))
        if a.out and run.stderr:
            messages.append(run.stderr.splitlines()[0][:600])
        problems = judge(run, case, fields)
        counts.update(problems)
        counts[f"exit {run.code if run.signal is None else -run.signal}"] += 1
        if problems:
            failures.append({"case": case.index, "mutations": case.mutations, "args": run.args,
                             "problems": problems, "code": run.code, "signal": run.signal,
                             "wall_s": round(run.wall_s, 2), "maxrss_mib": run.maxrss_bytes >> 20,
                             "stderr": run.stderr[-3000:]})
            if a.out:
                dest = a.out / "reproducers" / case.folder.name
                if not dest.exists():
                    shutil.copytree(case.folder, dest,
                                    ignore=shutil.ignore_patterns("reports"))
        if left == 1:
            stray = stray_outputs(case)
            if stray:
                counts["outputs outside reports/"] += 1
                failures.append({"case": case.index, "mutations": case.mutations,
                                 "problems": ["stray outputs"], "files": stray[:5]})
            if list(case.folder.rglob("PWNED")):
                counts["python tag ran"] += 1
            if ABS_NAME.exists():
                counts["outputs outside reports/"] += 1
                failures.append({"case": case.index, "problems": ["wrote " + str(ABS_NAME)]})
                shutil.rmtree(ABS_NAME, ignore_errors=True)
            del pending[run.case]
            shutil.rmtree(case.folder, ignore_errors=True)
        else:
            pending[run.case] = (case, left - 1)

    done_inputs = 0
    exhausted = False
    while True:
        while len(runner.live) < a.jobs:
            if not queue and not exhausted:
                try:
                    case = next(cases)
                except StopIteration:
                    exhausted = True
                    break
                pending[case.index] = (case, len(case.commands))
                queue += [(case, cmd) for cmd in case.commands]
                counts["inputs"] += 1
            if not queue:
                break
            case, cmd = queue.pop(0)
            runner.start(Run(case.index, cmd), case.folder / "a/b/cwd")
        if not runner.live:
            break
        for run in runner.reap(block=True):
            finish(run)
        if not a.quiet and counts["inputs"] // 250 > done_inputs:
            done_inputs = counts["inputs"] // 250
            print(f"[{time.monotonic() - t0:7.0f} s] inputs {counts['inputs']}, runs "
                  f"{counts['command runs']}, failing runs {len(failures)}", flush=True)

    wall = time.monotonic() - t0
    load1 = os.getloadavg()
    summary = {
        "inputs": counts["inputs"], "command runs": counts["command runs"],
        "tracebacks": counts["traceback"], "bad exits": counts["bad exit"],
        "hangs over 30 s": counts["hang"], "runs over 30 CPU s": counts["cpu over 30 s"],
        "runs over 2 GiB": counts["over 2 GiB"],
        "messages not one line": counts["message not one line"],
        "messages of 500+ characters": counts["message too long"],
        "messages naming no file": counts["message names no file"],
        "messages naming no field": counts["message names no field"],
        "outputs outside reports/": counts["outputs outside reports/"],
        "python tags that ran": counts["python tag ran"],
        "longest message (characters)": longest,
        "longest run (wall s)": round(max_wall, 2),
        "largest run (MiB)": int(max_rss) >> 20,
        "exit codes": {k: v for k, v in sorted(counts.items()) if k.startswith("exit ")},
        "cpu seconds (children)": round(cpu, 1), "wall seconds": round(wall, 1),
        "jobs": a.jobs, "seed": a.seed,
        "load average at start": [round(x, 2) for x in load0],
        "load average at end": [round(x, 2) for x in load1],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                   f"{platform.release()}, Python {platform.python_version()}",
    }
    for k, v in summary.items():
        print(f"{k}: {v}")
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        (a.out / "messages.txt").write_text("".join(m + "\n" for m in messages))
        (a.out / "failures.jsonl").write_text(
            "".join(json.dumps(f, default=str) + "\n" for f in failures))
    shutil.rmtree(scratch, ignore_errors=True)
    bad = sum(summary[k] for k in ("tracebacks", "bad exits", "hangs over 30 s",
                                   "runs over 2 GiB", "messages not one line",
                                   "messages of 500+ characters", "outputs outside reports/",
                                   "python tags that ran"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

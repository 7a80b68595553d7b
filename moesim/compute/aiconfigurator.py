"""Import the measured kernel tables of ``aiconfigurator-core`` into a moesim calibration table.

aiconfigurator-core (NVIDIA, Apache-2.0) ships per-system measurement tables (parquet) under
``aiconfigurator_core/systems/data/<system>/<op>/<framework>/<version>/``. Only its data is
read, never its code. pandas and pyarrow come with the ``aiconfigurator`` extra and are
imported inside functions, so ``import moesim`` works without them.

Rules (docs/compute.md, "aiconfigurator-core"):

- one framework/version per family, by :func:`choose`: the most distinct values of the
  family's scale axis (GPU counts for NCCL, node counts for DeepEP), then the largest span
  (the cells of the grids it covers: per series key, the product of its axes' distinct
  values), then trtllm before the other frameworks (alphabetically), then the newest version;
  the memory-bound curves come from the GEMM table's framework and version, because they
  also take the activation quantization out of the FP8 GEMM times;
- units: latency is milliseconds per call (stored as microseconds); NCCL ``message_size``
  counts elements of ``nccl_dtype`` (bytes = count x element size); DeepEP times are
  microseconds already; times are rounded to 4 significant digits;
- semantics and the family conversions are in :mod:`moesim.compute.aic_convert`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moesim.compute import aic_convert as cv
from moesim.compute.calibration import CalibrationTable
from moesim.compute.families import Provenance, SourceFile
from moesim.errors import SpecError

PACKAGE = "aiconfigurator-core"
MODULE = "aiconfigurator_core"
EXTRA = "aiconfigurator"
LICENSE = "Apache-2.0"
COPYRIGHT = "Copyright (c) 2026 NVIDIA CORPORATION & AFFILIATES (SPDX headers of the data)"

# The source's system names and the accelerator names of topologies/*.yaml they attach to
# (GB300 has no topology yet; its name follows the others).
SYSTEM_ACCELERATOR = {
    "a100_sxm": "A100-SXM-80GB",
    "h100_sxm": "H100-SXM",
    "h200_sxm": "H200-SXM",
    "b200_sxm": "B200",
    "gb200": "GB200",
    "gb300": "GB300",
}


@dataclass(frozen=True)
class Candidate:
    """One framework/version folder of one family, with its files read."""

    family: str
    framework: str
    version: str
    frames: dict[str, Any]  # file stem -> DataFrame
    paths: dict[str, str]  # file stem -> path inside the package


@dataclass(frozen=True)
class FamilyRule:
    op_dir: str
    files: tuple[str, ...]  # file stems; the first must exist
    span: Callable[[dict[str, Any]], tuple[int, int]]  # (scale values, span)


FAMILIES: dict[str, FamilyRule] = {
    "gemm": FamilyRule("gemm", ("gemm_perf",), cv.gemm_span),
    "moe": FamilyRule("moe", ("moe_perf",), cv.moe_span),
    "attention": FamilyRule("attention", ("context_attention_perf",
                                          "generation_attention_perf"), cv.attention_span),
    "mla": FamilyRule("mla", ("context_mla_perf", "generation_mla_perf"), cv.mla_span),
    "nccl": FamilyRule("comm", ("nccl_perf",), cv.nccl_span),
    "deepep": FamilyRule("comm", ("wideep_deepep_normal_perf", "wideep_deepep_ll_perf"),
                         cv.deepep_span),
}


def package_dir() -> Path:
    """The installed aiconfigurator_core package folder; a SpecError naming the extra if absent."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise SpecError(f"{PACKAGE} is not installed; install the extra: "
                        f"pip install 'moesim[{EXTRA}]' (needs Python >= 3.11)")
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise SpecError(f"reading {PACKAGE} tables needs pandas and pyarrow; install the "
                        f"extra: pip install 'moesim[{EXTRA}]'") from None
    return Path(next(iter(spec.submodule_search_locations)))


def package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def systems() -> list[str]:
    """Systems of the installed package that have measured data."""
    data = package_dir() / "systems" / "data"
    return sorted(p.name for p in data.iterdir() if p.is_dir() and any(p.rglob("*.parquet")))


def default_out(system: str) -> Path:
    """calibration/aic-<system>.json, with the system's underscores as dashes."""
    return Path("calibration") / f"aic-{system.replace('_', '-')}.json"


def version_key(version: str) -> tuple[Any, ...]:
    """Sort key of a version string: release numbers, then dev < rc < final < post."""
    parts = re.findall(r"\d+|[a-z]+", version.lower())
    release: list[int] = []
    while parts and parts[0].isdigit():
        release.append(int(parts.pop(0)))
    tag_rank = {"dev": -3, "a": -2, "alpha": -2, "b": -2, "beta": -2, "rc": -1, "post": 1}
    tag, num = (parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0) \
        if parts else ("", 0)
    return (tuple(release + [0] * (4 - len(release))), tag_rank.get(tag, 0), num)


def candidates(system_dir: Path, family: str) -> list[Candidate]:
    """Every framework/version folder of ``family`` that has its first file."""
    import pandas as pd

    rule = FAMILIES[family]
    out = []
    base = system_dir / rule.op_dir
    if not base.is_dir():
        return out
    root = system_dir.parents[2]  # the package folder
    for fw_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for ver_dir in sorted(p for p in fw_dir.iterdir() if p.is_dir()):
            if not (ver_dir / f"{rule.files[0]}.parquet").is_file():
                continue
            frames, paths = {}, {}
            for stem in rule.files:
                f = ver_dir / f"{stem}.parquet"
                if f.is_file():
                    frames[stem] = pd.read_parquet(f)
                    paths[stem] = f.relative_to(root).as_posix()
            out.append(Candidate(family, fw_dir.name, ver_dir.name, frames, paths))
    return out


def choose(cands: list[Candidate]) -> Candidate | None:
    """The candidate the module rule picks (see the module docstring)."""
    if not cands:
        return None

    def score(c: Candidate) -> tuple[Any, ...]:
        scale, span = FAMILIES[c.family].span(c.frames)
        # trtllm first; then the others alphabetically (a later letter scores lower).
        framework = (1, "") if c.framework == "trtllm" else (0, _invert(c.framework))
        return (scale, span, framework, version_key(c.version))

    return max(cands, key=score)


def _invert(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def import_system(system: str, *, accelerator: str | None = None,
                  name: str | None = None) -> CalibrationTable:
    """Convert ``system``'s measured tables into one calibration table (deterministic)."""
    root = package_dir()
    system_dir = root / "systems" / "data" / system
    if not system_dir.is_dir() or not any(system_dir.rglob("*.parquet")):
        valid = ", ".join(systems())
        raise SpecError(f"--system {system!r} has no measured data in {PACKAGE} "
                        f"{package_version()}; valid: {valid}")
    chosen = {fam: choose(candidates(system_dir, fam)) for fam in FAMILIES}
    files: list[SourceFile] = []
    rules = list(cv.RULES)
    parts: dict[str, Any] = {}
    gemm = chosen["gemm"]
    quant = _quantize_frames(system_dir, gemm) if gemm else {}
    if gemm is not None:
        grids, notes = cv.convert_gemm(gemm.frames["gemm_perf"], quant)
        parts["gemm_grids"] = grids
        rules += notes
        _record(files, gemm, "gemm", {"gemm_perf": sum(_kept_gemm(g) for g in grids)})
        if quant:
            parts["memory_curves"] = cv.convert_memory(quant)
            _record_quant(files, root, system_dir, gemm, quant)
    converters = {"moe": ("moe_series", cv.convert_moe), "attention": ("attention_series",
                  cv.convert_attention), "mla": ("mla_series", cv.convert_mla),
                  "nccl": ("collective_curves", cv.convert_nccl),
                  "deepep": ("deepep_series", cv.convert_deepep)}
    for fam, (field, convert) in converters.items():
        cand = chosen[fam]
        if cand is None:
            continue
        items, kept = convert(cand.frames)
        parts[field] = items
        _record(files, cand, fam, kept)
    device = _device_name(chosen)
    acc = accelerator or SYSTEM_ACCELERATOR.get(system)
    prov = Provenance(
        source="aiconfigurator-core", package=PACKAGE, package_version=package_version(),
        license=LICENSE, copyright=COPYRIGHT, system=system, device_name=device,
        files=tuple(files), rules=tuple(rules), left_out=tuple(cv.left_out(system_dir)))
    return CalibrationTable(name=name or f"aic-{system.replace('_', '-')}", accelerator=acc,
                            provenance=prov, **parts)


def _kept_gemm(grid: Any) -> int:
    return sum(t is not None for t in grid.time_us)


def _record(files: list[SourceFile], cand: Candidate, family: str,
            kept: dict[str, int]) -> None:
    for stem, frame in cand.frames.items():
        files.append(SourceFile(family=family, framework=cand.framework,  # type: ignore[arg-type]
                                framework_version=cand.version, path=cand.paths[stem],
                                num_rows=len(frame), num_rows_kept=int(kept.get(stem, 0))))


def _quantize_frames(system_dir: Path, gemm: Candidate) -> dict[str, Any]:
    """The quantize tables of the GEMM table's framework and version, if measured."""
    import pandas as pd

    d = system_dir / "quantize" / gemm.framework / gemm.version
    out = {}
    for stem in ("scale_matrix_perf", "computescale_perf"):
        if (d / f"{stem}.parquet").is_file():
            out[stem] = pd.read_parquet(d / f"{stem}.parquet")
    return out if "scale_matrix_perf" in out else {}


def _record_quant(files: list[SourceFile], root: Path, system_dir: Path, gemm: Candidate,
                  quant: dict[str, Any]) -> None:
    for stem, frame in quant.items():
        path = (system_dir / "quantize" / gemm.framework / gemm.version / f"{stem}.parquet")
        files.append(SourceFile(family="memory", framework=gemm.framework,
                                framework_version=gemm.version,
                                path=path.relative_to(root).as_posix(), num_rows=len(frame),
                                num_rows_kept=int((frame["latency"] > 0).sum())))


def _device_name(chosen: dict[str, Candidate | None]) -> str:
    for fam in ("gemm", "moe", "attention", "nccl"):
        cand = chosen.get(fam)
        if cand is None:
            continue
        frame = next(iter(cand.frames.values()))
        if "device" in frame.columns and len(frame):
            return str(sorted(frame["device"].astype(str).unique())[0])
    return ""

"""One profile run: environment, kernels, collectives -> a CalibrationTable."""

from __future__ import annotations

from collections.abc import Callable

from moesim.compute.calibration import CalibrationTable
from moesim.errors import SpecError
from moesim.profiling.collectives import profile_collectives
from moesim.profiling.grids import ProfileGrid, default_grid
from moesim.profiling.kernels import (
    profile_attention,
    profile_gemms,
    profile_grouped,
    profile_memory,
)
from moesim.profiling.timing import environment, import_torch


def _check_device(device: str, dtype: str) -> None:
    torch = import_torch()
    if device not in ("cuda", "cpu"):
        raise SpecError(f"--device {device!r} is not supported; valid: cuda, cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device cuda: torch sees no CUDA device here; use --device cpu")
    if dtype == "fp8" and device != "cuda":
        raise SpecError("--dtype fp8 needs a CUDA GPU with FP8 tensor cores; valid on cpu: "
                        "fp32, bf16")


def run_profile(device: str, dtype: str = "bf16", *, quick: bool = False,
                grid: ProfileGrid | None = None, name: str | None = None,
                collectives: bool = True,
                progress: Callable[[str], None] | None = None) -> CalibrationTable:
    """Measure ``grid`` (default: :func:`default_grid`) on ``device`` in ``dtype``."""
    _check_device(device, dtype)
    torch = import_torch()
    torch.manual_seed(0)
    say = progress or (lambda _msg: None)
    g = grid or default_grid(device, quick)
    threads = torch.get_num_threads()
    if g.threads is not None:
        torch.set_num_threads(g.threads)
    try:
        return _measure(g, device, dtype, quick=quick, name=name, collectives=collectives,
                        say=say)
    finally:
        torch.set_num_threads(threads)


def _measure(g: ProfileGrid, device: str, dtype: str, *, quick: bool, name: str | None,
             collectives: bool, say: Callable[[str], None]) -> CalibrationTable:
    env = environment(device)
    dev = "cuda" if device == "cuda" else "cpu"
    gemm = profile_gemms(g, dev, dtype, say)
    grouped = profile_grouped(g, dev, dtype, say)
    attention = profile_attention(g, dev, dtype, say)
    memory = profile_memory(g, dev, dtype, say)
    notes = [f"grid: {'quick' if quick else 'full'}; warm-up {g.warmup}, {g.repeats} repeats, "
             f"samples of at least {g.min_sample_s * 1e3:g} ms; times: median and min of the repeats (the model uses the "
             f"{'median' if dev == 'cuda' else 'min'}); GEMMs "
             f"timed in rounds (one sample of every shape per round); torch threads "
             f"{env.num_threads}"]
    if dtype == "fp8":
        notes.append("fp8: dense GEMMs use torch._scaled_mm with unit scales; grouped GEMMs, "
                     "attention and memory ops run in bf16")
    coll = []
    if collectives:
        coll, coll_notes = profile_collectives(g, dev, say)
        notes.extend(coll_notes)
    return CalibrationTable(
        name=name or f"{dev}-{dtype}", dtype=dtype, environment=env, quick=quick,  # type: ignore[arg-type]
        statistic="median" if dev == "cuda" else "min",
        gemm=tuple(gemm), grouped_gemm=tuple(grouped), attention=tuple(attention),
        memory=tuple(memory), collectives=tuple(coll), notes=tuple(notes))

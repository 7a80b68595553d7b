"""Timing one op with torch: warm-up, repeats, median and spread; CUDA events on GPU."""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from moesim.compute.calibration import EnvironmentRecord, TimingStats
from moesim.errors import SpecError

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "fp8": "float8_e4m3fn"}


def import_torch() -> Any:
    """Import torch or explain how to get it (one SpecError line)."""
    try:
        import torch
    except ImportError:
        raise SpecError("moesim profile needs torch: pip install -e '.[profile]'") from None
    return torch


def torch_dtype(dtype: str) -> Any:
    """The torch dtype for a moesim dtype name."""
    return getattr(import_torch(), TORCH_DTYPES[dtype])


def synchronize(device: str) -> None:
    if device == "cuda":
        import_torch().cuda.synchronize()


def time_op(fn: Callable[[], Any], device: str, *, warmup: int, repeats: int,
            min_sample_s: float) -> TimingStats:
    """Time ``fn``: ``warmup`` untimed calls, then ``repeats`` samples of seconds per call.

    Each sample runs enough back-to-back calls to last at least ``min_sample_s`` (so timer
    resolution and launch jitter do not dominate small ops); on CUDA a sample is measured
    between two CUDA events after a synchronize.
    """
    calls = prepare(fn, device, warmup=warmup, min_sample_s=min_sample_s)
    return stats([sample(fn, device, calls) / calls for _ in range(repeats)], calls)


def prepare(fn: Callable[[], Any], device: str, *, warmup: int, min_sample_s: float) -> int:
    """Warm ``fn`` up and return how many calls one sample of ``min_sample_s`` needs."""
    for _ in range(max(warmup, 1)):
        fn()
    synchronize(device)
    single = sample(fn, device, 1)
    return max(1, min(10_000, int(np.ceil(min_sample_s / max(single, 1e-9)))))


def stats(samples: list[float], calls: int = 1) -> TimingStats:
    """Median, p10 and p90 of per-call seconds."""
    s = np.maximum(np.asarray(samples, dtype=np.float64), 1e-9)
    return TimingStats(median_s=float(np.median(s)), min_s=float(s.min()),
                       p10_s=float(np.percentile(s, 10)),
                       p90_s=float(np.percentile(s, 90)), num_repeats=len(s),
                       calls_per_repeat=calls)


def sample(fn: Callable[[], Any], device: str, calls: int) -> float:
    """Seconds for ``calls`` back-to-back calls of ``fn``."""
    if device == "cuda":
        torch = import_torch()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        torch.cuda.synchronize()
        return max(start.elapsed_time(end) * 1e-3, 1e-9)  # elapsed_time is milliseconds
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return max(time.perf_counter() - t0, 1e-9)


def environment(device: str) -> EnvironmentRecord:
    """Device name and count, driver, torch and CUDA versions, threads, memory, date."""
    torch = import_torch()
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    host = hashlib.sha256(platform.node().encode()).hexdigest()[:8]
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return EnvironmentRecord(
            device_kind="cuda", device_name=props.name, device_count=torch.cuda.device_count(),
            driver=_cuda_driver(), torch_version=torch.__version__,
            cuda_version=torch.version.cuda or "", num_threads=torch.get_num_threads(),
            memory_gb=props.total_memory / 1e9, num_sms=props.multi_processor_count,
            hostname_hash=host, date=now)
    return EnvironmentRecord(
        device_kind="cpu", device_name=_cpu_name(), device_count=1, driver="",
        torch_version=torch.__version__, cuda_version=torch.version.cuda or "",
        num_threads=torch.get_num_threads(), memory_gb=_cpu_memory_gb(),
        hostname_hash=host, date=now)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} x{os.cpu_count()}"


def _cpu_memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def _cuda_driver() -> str:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""

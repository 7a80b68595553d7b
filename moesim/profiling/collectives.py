"""Timing collectives through torch.distributed on the local devices.

``world_size`` local processes are started with torch.multiprocessing.spawn and joined with
a file:// rendezvous in a temporary folder; NCCL on GPUs (one GPU per process), gloo on the
CPU. Every rank runs the same fixed sequence of calls (one collective per sample, so no rank
decides a repeat count the others do not know); rank 0's timings are recorded, after a
barrier before each size.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from moesim.compute.calibration import CollectivePoint
from moesim.profiling.grids import ProfileGrid
from moesim.profiling.timing import import_torch, stats


def _op_fn(dist: Any, torch: Any, op: str, nbytes: int, world: int,
           device: str) -> tuple[int, Any]:
    """(bytes per rank, fn): the collective ``op`` on a float32 buffer of about ``nbytes``.

    The buffer is each rank's input for all-reduce, reduce-scatter and all-to-all, and its
    output (the gathered whole) for all-gather, so one size means one vector throughout.
    """
    n = max(world, nbytes // 4 // world * world)
    x = torch.ones(n, device=device)
    if op == "all_reduce":
        return 4 * n, lambda: dist.all_reduce(x)
    if op == "all_gather":
        shard = x[: n // world].clone()
        ag = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
        return 4 * n, lambda: ag(x, shard)
    if op == "reduce_scatter":
        out = torch.empty(n // world, device=device)
        rs = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        return 4 * n, lambda: rs(out, x)
    out = torch.empty_like(x)
    return 4 * n, lambda: dist.all_to_all_single(out, x)


def _time_collective(fn: Any, dist: Any, torch: Any, device: str, warmup: int,
                     repeats: int) -> list[float]:
    import time

    for _ in range(max(warmup, 1)):
        fn()
    samples = []
    for _ in range(repeats):
        dist.barrier()
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
    return samples


def _worker(rank: int, world: int, device: str, init_file: str, out_file: str,
            sizes: list[int], ops: list[str], warmup: int, repeats: int) -> None:
    torch = import_torch()
    import torch.distributed as dist

    backend = "nccl" if device == "cuda" else "gloo"
    dev = device
    if device == "cuda":
        torch.cuda.set_device(rank)
        dev = f"cuda:{rank}"
    torch.set_num_threads(1)
    dist.init_process_group(backend, init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    rows = []
    try:
        for op in ops:
            for nbytes in sizes:
                actual, fn = _op_fn(dist, torch, op, nbytes, world, dev)
                samples = _time_collective(fn, dist, torch, device, warmup, repeats)
                rows.append({"op": op, "bytes": actual, "samples": samples})
    finally:
        dist.destroy_process_group()
    if rank == 0:
        Path(out_file).write_text(json.dumps(rows), encoding="utf-8")


def profile_collectives(grid: ProfileGrid, device: str,
                        progress: Any) -> tuple[list[CollectivePoint], list[str]]:
    """Time the grid's collectives; returns the points and notes (why something was skipped)."""
    torch = import_torch()
    import torch.multiprocessing as mp

    world = grid.collective_world_size
    if device == "cuda":
        world = min(world, torch.cuda.device_count()) if world else torch.cuda.device_count()
        if world < 2:
            return [], ["collectives skipped: fewer than 2 local GPUs"]
    if not grid.collective_bytes or not grid.collective_ops:
        return [], []
    with tempfile.TemporaryDirectory(prefix="moesim-dist-") as tmp:
        init_file, out_file = str(Path(tmp) / "init"), str(Path(tmp) / "out.json")
        mp.spawn(_worker, nprocs=world, join=True,
                 args=(world, device, init_file, out_file, list(grid.collective_bytes),
                       list(grid.collective_ops), grid.warmup, max(grid.repeats, 3)))
        rows = json.loads(Path(out_file).read_text(encoding="utf-8"))
    backend = "nccl" if device == "cuda" else "gloo"
    points = [CollectivePoint(op=r["op"], backend=backend, world_size=world,
                              bytes_per_rank=float(r["bytes"]), timing=stats(r["samples"]))
              for r in rows]
    progress(f"collectives: {len(points)} points over {world} {backend} processes")
    return points, [f"collectives: {world} local processes, {backend}, float32 buffers, "
                    "rank 0's time per call after a barrier"]

"""Chrome trace event export (opens in Perfetto and chrome://tracing), written as a stream.

One process per rank class, one thread per stream, one complete ("X") event per op with
``ts``/``dur`` in microseconds and the op's ``args`` (shape, bytes, group, source, micro-batch,
phase), "M" metadata events naming processes and threads, and flow events ("s" / "f") from
each pipeline send (or, where the schedule has no send op, the end of the sending chunk's
phase) to the first op of the receiving chunk's phase of the same micro-batch. Events of one
thread never overlap: when two ops of one stream overlap (a merged trace), the later one
goes onto an extra thread "<stream> #2", "#3", ...

The file is written piece by piece (never one string of the whole trace): the DeepSeek-V3
step on 2048 H800 has 575k ops. ``otherData`` says how many ops the step ran and how many
the file holds (``complete``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from moesim.io import open_text_atomic
from moesim.report.timeline import lane_keys
from moesim.results.schema import SimulationResult
from moesim.results.trace import TraceResult
from moesim.units import US

# Timestamps are rounded to 1 ns (3 decimals of a microsecond): finer than any op the
# engine models and it keeps trace.json small. Overlaps up to 2 ns count as touching: the
# engine's picosecond float noise can round to a 1 ns overlap (seen in the default scenario).
TS_DECIMALS = 3
TOUCH_TOLERANCE_US = 2.0 * 10.0 ** -TS_DECIMALS
CHUNK_EVENTS = 20_000  # events formatted per write


@dataclass(frozen=True)
class TraceFileInfo:
    """What a written trace.json holds."""

    path: Path
    events: int  # complete ("X") events: ops
    flows: int  # pipeline flow arrows
    ops_simulated: int
    complete: bool
    end_s: float  # when its last op ends
    size_bytes: int


def assign_rows(ts: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, ts, dur) of each interval, given in start order (us): greedy interval
    partitioning, each interval on the first row whose last one has ended (within
    :data:`TOUCH_TOLERANCE_US`, clipping that sliver)."""
    n = ts.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), ts, end - ts
    ends_acc = np.maximum.accumulate(end)
    prev = np.concatenate([[-np.inf], ends_acc[:-1]])
    if bool(np.all(ts >= prev - TOUCH_TOLERANCE_US)):  # one row: the usual case, vectorized
        start = np.maximum(ts, prev)
        return np.zeros(n, dtype=np.int64), start, np.maximum(0.0, end - start)
    rows = np.zeros(n, dtype=np.int64)
    out_ts, out_dur = ts.copy(), np.zeros(n)
    row_end: list[float] = []
    for i in range(n):
        t, e = float(ts[i]), float(end[i])
        r = next((j for j, x in enumerate(row_end) if t >= x - TOUCH_TOLERANCE_US), -1)
        if r < 0:
            r = len(row_end)
            row_end.append(t)
        t = max(t, row_end[r])
        d = max(0.0, e - t)
        rows[i], out_ts[i], out_dur[i] = r, t, d
        row_end[r] = t + d
    return rows, out_ts, out_dur


@dataclass
class _Layout:
    """Where every event went: pid, tid, ts, dur (us) per trace row, and the metadata."""

    pid: np.ndarray
    tid: np.ndarray
    ts: np.ndarray
    dur: np.ndarray
    order: list[np.ndarray]  # rows of each thread, in start order
    meta: list[dict[str, Any]]


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}


def _layout(result: SimulationResult, a: dict[str, np.ndarray]) -> _Layout:
    trace = result.trace
    mult = {m.rank_class: m.multiplicity for m in result.memory}
    n = trace.events
    pid = np.zeros(n, dtype=np.int64)
    tid = np.zeros(n, dtype=np.int64)
    ts_out, dur_out = np.zeros(n), np.zeros(n)
    ts_all = np.round(a["start_s"] / US, TS_DECIMALS)
    end_all = np.round((a["start_s"] + a["duration_s"]) / US, TS_DECIMALS)
    lane_index = {lane: i for i, lane in enumerate(trace.lanes)}
    pids: dict[str, int] = {}
    next_tid: dict[int, int] = {}
    meta: list[dict[str, Any]] = []
    order: list[np.ndarray] = []
    for rank_class, stream in lane_keys(trace):
        if rank_class not in pids:
            p = pids[rank_class] = len(pids) + 1
            label = f"{rank_class} (x{mult[rank_class]} ranks)" if rank_class in mult else rank_class
            meta += [_meta("process_name", p, 0, {"name": label}),
                     _meta("process_sort_index", p, 0, {"sort_index": p})]
        p = pids[rank_class]
        sel = np.flatnonzero(a["lane"] == lane_index[(rank_class, stream)])
        sel = sel[np.lexsort((sel, -a["duration_s"][sel], a["start_s"][sel]))]
        rows, ts, dur = assign_rows(ts_all[sel], end_all[sel])
        for r in range(int(rows.max()) + 1 if rows.size else 0):
            t = next_tid[p] = next_tid.get(p, 0) + 1
            thread = stream if r == 0 else f"{stream} #{r + 1}"
            meta += [_meta("thread_name", p, t, {"name": thread}),
                     _meta("thread_sort_index", p, t, {"sort_index": t})]
            mine = rows == r
            idx = sel[mine]
            pid[idx], tid[idx], ts_out[idx], dur_out[idx] = p, t, ts[mine], dur[mine]
            order.append(idx)
    return _Layout(pid, tid, ts_out, dur_out, order, meta)


def _flows(trace: TraceResult, a: dict[str, np.ndarray], lay: _Layout) -> list[tuple[int, int]]:
    """(source row, target row) of each pipeline hand-off: forward chunk c -> c + 1 and
    backward chunk c -> c - 1 of one micro-batch, between different rank classes."""
    if not trace.phases:
        return []
    phase_of = [tuple(p.split(":")) for p in trace.phases]
    is_send = np.array([s == "comm_pp" for _, s in trace.lanes], dtype=bool)[a["lane"]]
    rc_of = np.array([trace.lanes[i][0] for i in range(len(trace.lanes))], dtype=object)
    start, end = a["start_s"], a["start_s"] + a["duration_s"]
    rows = np.flatnonzero((a["phase"] >= 0) & (a["micro_batch"] >= 0))
    order = rows[np.argsort(start[rows], kind="stable")]  # the rows in start order
    span = int(a["micro_batch"][order].max()) + 1 if order.size else 1
    key = a["phase"][order].astype(np.int64) * span + a["micro_batch"][order]
    sent = is_send[order]
    # per (phase, chunk, micro-batch), over the rows in start order: the last send; the first
    # other op; the other op that ends last (of equal ends, the later one)
    keys, rows_of = key[sent][::-1], order[sent][::-1]
    u, at = np.unique(keys, return_index=True)
    send_of = dict(zip(u.tolist(), rows_of[at].tolist(), strict=True))
    keys, rows_of = key[~sent], order[~sent]
    u, at = np.unique(keys, return_index=True)
    first_of = dict(zip(u.tolist(), rows_of[at].tolist(), strict=True))
    by_end = np.lexsort((np.arange(keys.size), end[rows_of], keys))
    last_at = by_end[np.r_[keys[by_end][1:] != keys[by_end][:-1], True]] if keys.size else by_end
    last_of = dict(zip(keys[last_at].tolist(), rows_of[last_at].tolist(), strict=True))

    def named(table: dict[int, int]) -> dict[tuple[str, int, int], int]:
        out: dict[tuple[str, int, int], int] = {}
        for k, row in table.items():
            ph, chunk = phase_of[k // span]
            out[(ph, int(chunk), k % span)] = row
        return out

    first, last, send = named(first_of), named(last_of), named(send_of)
    out = []
    for (ph, chunk, mb), dst in sorted(first.items()):
        prev = chunk - 1 if ph == "forward" else chunk + 1
        if ph not in ("forward", "backward"):
            continue
        src = send.get((ph, prev, mb), last.get((ph, prev, mb)))
        if src is None:
            continue
        if rc_of[a["lane"][src]] != rc_of[a["lane"][dst]]:
            out.append((src, dst))
    return out


def _args_json(trace: TraceResult) -> list[str]:
    """Each args mapping as JSON without its closing brace (per-event keys follow)."""
    out = []
    for args in trace.arg_sets:
        text = json.dumps(args, separators=(",", ":"), sort_keys=True)
        out.append(text[:-1] if args else "{")
    return out


def _pieces(result: SimulationResult, a: dict[str, np.ndarray], lay: _Layout,
            flows: list[tuple[int, int]]) -> Iterator[str]:
    """trace.json as text pieces, in order."""
    trace = result.trace
    other = {"scenario": result.scenario, "fidelity": result.fidelity,
             "step_time_s": result.step_time_s, "num_devices": result.num_devices,
             "schema_version": result.schema_version, "events": trace.events,
             "ops_simulated": trace.ops_simulated, "complete": trace.complete,
             "flows": len(flows)}
    yield '{"displayTimeUnit":"ms","otherData":' + json.dumps(other, sort_keys=True)
    yield ',"traceEvents":['
    sep = ""
    for m in lay.meta:
        yield sep + json.dumps(m, separators=(",", ":"), sort_keys=True)
        sep = ","
    names = [json.dumps(x) for x in trace.names]
    kinds = [json.dumps(x) for x in trace.kinds]
    phases = [json.dumps(x) for x in trace.phases]
    streams = [json.dumps(s) for _, s in trace.lanes]
    args = _args_json(trace)
    # plain Python lists: indexing them per event is several times cheaper than numpy's
    col_name, col_kind, col_args = (a[k].tolist() for k in ("name", "kind", "args"))
    col_mb, col_phase, col_lane = (a[k].tolist() for k in ("micro_batch", "phase", "lane"))
    pid, tid, ts, dur = lay.pid.tolist(), lay.tid.tolist(), lay.ts.tolist(), lay.dur.tolist()
    for idx in lay.order:
        for lo in range(0, idx.size, CHUNK_EVENTS):
            part = []
            for i in idx[lo:lo + CHUNK_EVENTS].tolist():
                mb, phase = col_mb[i], col_phase[i]
                base = args[col_args[i]]
                if mb >= 0:
                    extra = (f'"micro_batch":{mb},"phase":{phases[phase]}' if phase >= 0
                             else f'"micro_batch":{mb}')
                elif phase >= 0:
                    extra = f'"phase":{phases[phase]}'
                elif base == "{":
                    extra = f'"stream":{streams[col_lane[i]]}'
                else:
                    extra = ""
                tail = ("," if base != "{" and extra else "") + extra + "}"
                part.append(f'{sep}{{"args":{base}{tail},"cat":{kinds[col_kind[i]]},'
                            f'"dur":{dur[i]:.3f},"name":{names[col_name[i]]},"ph":"X",'
                            f'"pid":{pid[i]},"tid":{tid[i]},"ts":{ts[i]:.3f}}}')
                sep = ","
            yield "".join(part)
    for n, (src, dst) in enumerate(flows, start=1):
        s_ts = lay.ts[src] + lay.dur[src] / 2
        yield (f'{sep}{{"cat":"pipeline","id":{n},"name":"pipeline send","ph":"s",'
               f'"pid":{lay.pid[src]},"tid":{lay.tid[src]},"ts":{s_ts:.3f}}}'
               f',{{"bp":"e","cat":"pipeline","id":{n},"name":"pipeline send","ph":"f",'
               f'"pid":{lay.pid[dst]},"tid":{lay.tid[dst]},"ts":{lay.ts[dst]:.3f}}}')
        sep = ","
    yield "]}"


def write_trace(result: SimulationResult, out: TextIO) -> int:
    """Write the result's trace.json text to ``out``, piece by piece; returns the number of
    flow arrows."""
    a = result.trace.arrays()
    lay = _layout(result, a)
    flows = _flows(result.trace, a, lay)
    for piece in _pieces(result, a, lay, flows):
        out.write(piece)
    return len(flows)


def chrome_trace_json(result: SimulationResult) -> str:
    """trace.json as one string (deterministic; for small traces and tests)."""
    buf = io.StringIO()
    write_trace(result, buf)
    return buf.getvalue()


def chrome_trace(result: SimulationResult) -> dict[str, Any]:
    """The result's trace as a Chrome trace JSON object (``traceEvents`` + ``otherData``)."""
    return json.loads(chrome_trace_json(result))


def write_trace_file(result: SimulationResult, path: str | Path) -> TraceFileInfo:
    """Stream trace.json to ``path`` atomically (a temporary name in its folder, then rename)."""
    p = Path(path)
    with open_text_atomic(p) as fh:
        flows = write_trace(result, fh)
    trace = result.trace
    return TraceFileInfo(p, trace.events, flows, trace.ops_simulated, trace.complete,
                         trace.end_s, p.stat().st_size)

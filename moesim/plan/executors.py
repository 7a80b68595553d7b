"""Run independent tasks and yield their results as they finish: in-process, a process pool, Ray.

Every executor has the same shape: ``run(fn, tasks)`` yields ``fn(task)`` for each task in
completion order, and ``close()`` stops what is still running (on Ctrl-C as well). ``fn``
must be a module-level function and tasks picklable.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

from moesim.constants import MAX_WORKERS  # processes one pool may start
from moesim.errors import SpecError


class Executor(Protocol):
    name: str

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    """The CPU cores this process may use (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class SerialExecutor:
    """Runs tasks one after another in this process (``--workers 1``; tests)."""

    name = "serial"

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        for t in tasks:
            yield fn(t)

    def close(self) -> None:
        return None


# How often a worker checks that the process that started it is still alive (seconds).
PARENT_POLL_S = 0.25


def _init_worker(parent: int) -> None:
    """Ctrl-C goes to the whole process group; only the parent handles it, so workers must
    not die with a traceback each. And a worker must not outlive its parent: a ``kill -9`` of
    the sweep leaves the pool's workers orphaned (re-parented), so each one watches its
    parent id from a daemon thread and exits when it changes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="moesim-parent-watch",
                     daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)  # the parent is gone: no one will read this worker's results


class LocalExecutor:
    """A process pool of ``workers`` processes; at most ``2 x workers`` tasks in flight."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = min(workers or default_workers(), MAX_WORKERS)
        self._pool: ProcessPoolExecutor | None = None

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                             initargs=(os.getpid(),))
        pool = self._pool
        todo = iter(tasks)
        pending: set[Future[Any]] = set()
        window = 2 * self.workers
        while True:
            for t in todo:
                pending.add(pool.submit(fn, t))
                if len(pending) >= window:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()

    def close(self) -> None:
        if self._pool is None:
            return
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # a point may take minutes; do not wait for it on Ctrl-C
            if proc.is_alive():
                proc.terminate()
        self._pool = None


class RayExecutor:
    """The same tasks as Ray tasks: on a running cluster (``address='auto'``) or a local one.

    ``num_cpus`` sizes a local instance (None: all cores); ignored when joining a cluster.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise SpecError("--executor ray needs Ray: pip install 'moesim[ray]'",
                            field="executor") from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = num_cpus
            ray.init(**kwargs)
            self._started = True
        self._pending: list[Any] = []

    def run(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        ray = self._ray
        remote = ray.remote(num_cpus=1)(fn)
        self._pending = [remote.remote(t) for t in tasks]
        while self._pending:
            done, self._pending = ray.wait(self._pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)

    def close(self) -> None:
        for ref in self._pending:
            self._ray.cancel(ref, force=True)
        self._pending = []
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(kind: str, *, workers: int | None = None,
                  address: str | None = None) -> Executor:
    """'local' (process pool; serial when workers == 1) or 'ray'."""
    if kind == "local":
        if workers == 1:
            return SerialExecutor()
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=workers)
    raise SpecError(f"--executor {kind!r}: valid: local, ray", field="executor")

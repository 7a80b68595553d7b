"""EngineSession: what simulations of one session share, cached by value.

A planner prices hundreds of layouts of one model on one cluster. What they have in common
is built once per session and looked up by value (never by object identity):

- step programs (they depend on the model, the layout, the workload and the device count);
- kernel cost models per (accelerator, kernel dtype, measured table file): building one fits
  the grouped-GEMM ratio curve from the table's MoE series;
- prices of fixed-shape ops and collectives, with the bytes per link of flow-priced ones;
- the cluster and process groups of a (topology, devices, layout);
- per-rank parameter counts of the memory screen.

Nothing is shared between sessions. A ``Simulation`` without a session gets a fresh one;
``Backend`` (moesim.plan.evaluate) holds one per search; ``moesim.simulate(session=...)``
shares one across calls; a sweep point (moesim.plan.sweep) runs in a fresh one. A session
pickles as an empty session, so the tasks an executor ships to worker processes carry none of
its caches.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from moesim.compute import KernelCostModel
    from moesim.compute.tables import TableCache

T = TypeVar("T")


class LruCache:
    """A bounded mapping that forgets its least recently used entry first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get_or_make(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value cached under ``key``, made (and cached) on a miss."""
        data = self._data
        if key in data:
            data.move_to_end(key)
            return data[key]  # type: ignore[no-any-return]
        value = make()
        data[key] = value
        if len(data) > self.max_entries:
            data.popitem(last=False)
        return value

    def get(self, key: Hashable, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: Hashable, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.max_entries:
            self._data.popitem(last=False)


class EngineSession:
    """Caches shared by the simulations of one session (see the module docstring).

    ``tables``: where measured calibration tables are loaded from (the process-wide
    ``moesim.compute.tables.DEFAULT_TABLES`` by default).
    """

    def __init__(self, tables: TableCache | None = None, *, max_programs: int = 32,
                 max_prices: int = 200_000, max_clusters: int = 64) -> None:
        self.tables = tables
        self.programs = LruCache(max_programs)
        self.prices = LruCache(max_prices)  # key -> (seconds, source)
        self.links: dict[Hashable, dict[str, float]] = {}  # key of a price -> bytes per link
        self.clusters = LruCache(max_clusters)
        self.kernels = LruCache(16)
        self.rank_params = LruCache(100_000)
        self._ids: dict[Hashable, int] = {}

    def intern(self, key: Hashable) -> int:
        """A small int standing for ``key`` (compared by value once, then hashed cheaply)."""
        return self._ids.setdefault(key, len(self._ids))

    def price(self, key: Hashable, make: Callable[[], tuple[float, str]]) -> tuple[float, str]:
        """(seconds, source) of ``key``, priced once per session."""
        hit = self.prices.get(key)
        if hit is None:
            hit = make()
            self.prices.put(key, hit)
            if len(self.links) > self.prices.max_entries:
                self.links.clear()
        return hit  # type: ignore[no-any-return]

    def kernel_model(self, accelerator: Any, dtype: str, table: Any) -> KernelCostModel:
        """The kernel cost model of ``accelerator`` in ``dtype`` over ``table`` (or none)."""
        from moesim.compute import KernelCostModel

        key = (accelerator, dtype, None if table is None else table.source_path)
        return self.kernels.get_or_make(key, lambda: KernelCostModel(accelerator, dtype, table))

    def __reduce__(self) -> tuple[Any, ...]:
        # Caches stay in the process that built them: a pickled session arrives empty (a
        # table cache only saves reading files, which the receiving process does itself).
        return (EngineSession, ())

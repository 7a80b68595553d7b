"""Link loads of a direct all-to-all-v on NVSwitch domains joined by a fat tree, by row blocks.

Every byte of ``t[i, j]`` (group rank i to group rank j, i != j) takes the route of
``moesim.cluster.routing``: inside a domain the NVLink pair (i up, j down); across domains on
a rail-optimized tree first NVLink to the same-rail proxy of i's domain (when the rails
differ, PXN), then the NIC of i's domain on j's rail, the leaf-to-spine and spine-to-leaf
groups of that rail when the scalable units (leaf groups) differ, and j's NIC; without rail
optimization i's own NIC and the leaf groups of the two units. A link's load is therefore a
sum of class sums of the matrix: per row by destination rail, per column, each split into the
part inside the row's domain, inside its scalable unit, and beyond.

The matrix is read one block of rows at a time: each block is copied into a float64 scratch
buffer, the part inside each row's own unit (or domain) is gathered out (a few hundred
entries a row) and zeroed, and the rest is reduced by rows, rails and columns. Every load is
a sum of non-negative entries (no differences of sums), so a link is loaded exactly when one
of its entries is, and the loads equal the per-pair routes' up to float summation order.
Memory: the scratch block plus O(n x rails) per group, whatever the matrix's size.

Units: bytes.
"""

from __future__ import annotations

import numpy as np

from moesim.cluster.plan import ClusterPlan
from moesim.errors import InfeasibleError, SpecError

# Matrix entries per row block: an 8 MiB float64 scratch buffer (fits the L3 of a server core).
BLOCK_ELEMENTS = 1 << 20


def supports_direct_loads(cluster: ClusterPlan) -> bool:
    """Whether ``DirectLoads`` covers ``cluster``: NVSwitch domains, alone or on a fat tree."""
    return "nvl_up" in cluster.offsets and not (cluster.fat_tree is None
                                                and cluster.dcn is not None)


def block_rows(n: int) -> int:
    """Rows per block for an n-column matrix."""
    return max(1, min(n, BLOCK_ELEMENTS // max(n, 1)))


class _Group:
    """One group's rank classes, own-region table and per-row / per-column sums."""

    def __init__(self, cluster: ClusterPlan, dev: np.ndarray) -> None:
        ft, m = cluster.fat_tree, cluster.devices_per_domain
        n = dev.shape[0]
        self.n, self.dev = n, dev
        a = dev // m
        self.dom = a
        self.inter = ft is not None and np.unique(a).size > 1
        # Refused when loads are asked for (a group that sends nothing is not refused).
        self.multi_fabric = bool(self.inter
                                 and np.unique(a // ft.num_domains).size > 1)  # type: ignore[union-attr]
        self.ro = bool(self.inter and ft.rail_optimized)  # type: ignore[union-attr]
        self.k = k = max(cluster.nics_per_domain, 1)
        self.rail = np.asarray(cluster.nic_local(dev % m), dtype=np.int64)
        self.su = a // ft.domains_per_leaf_group if ft is not None else a
        # The own region of a row: its scalable unit when some of the group lies beyond it
        # (the rest of the row is then the fabric-crossing part), else its domain.
        self.by_su = bool(self.inter and np.unique(self.su).size > 1)
        ids, slot = np.unique(self.su if self.by_su else a, return_inverse=True)
        slot = slot.ravel()
        counts = np.bincount(slot, minlength=ids.size)
        order = np.argsort(slot, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        members = np.full((ids.size, int(counts.max())), n, dtype=np.intp)  # n: a zero column
        members[slot[order], np.arange(n) - np.repeat(starts, counts)] = order
        self.members, self.slot = members, slot
        self.dom_ext = np.append(a, -1)
        self.rail_ext = np.append(self.rail, 0)
        self.period, self.fold = self._rail_period(cluster) if self.ro else (0, np.zeros(0))
        self.intra_row = np.zeros(n)
        self.intra_col = np.zeros(n)
        width = (n, k) if self.ro else (n,)
        self.far_row = np.zeros(width)   # beyond the own unit: by destination rail when RO
        self.near_row = np.zeros(width)  # other domains of the own unit (or all, one unit)
        self.far_col = np.zeros(n)
        self.near_col = np.zeros(n)
        self.max_row_sum = 0.0

    def _rail_period(self, cluster: ClusterPlan) -> tuple[int, np.ndarray]:
        """A period p of the columns' rails (0: none) and the one-hot fold of p columns (or all
        n) onto rails: rails by a strided sum then a p x rails product, not an n x rails one."""
        n, m = self.n, cluster.devices_per_domain
        run = int(np.flatnonzero(np.append(self.dom[1:] != self.dom[:-1], True))[0]) + 1
        for p in sorted({m, self.k, run}):
            if 0 < p < n and n % p == 0 and (self.rail.reshape(-1, p) == self.rail[:p]).all():
                return p, np.eye(self.k)[self.rail[:p]]
        return 0, np.eye(self.k)[self.rail]

    def _rails(self, x: np.ndarray) -> np.ndarray:
        """Row sums of ``x`` (R x n) by destination rail (R x rails)."""
        if self.period:
            p = self.period
            x = np.einsum("rjq->rq", x.reshape(x.shape[0], self.n // p, p))
        return x @ self.fold

    def add_block(self, r0: int, block: np.ndarray, buf: np.ndarray) -> None:
        """Rows ``r0 : r0 + len(block)`` of the group's matrix; ``buf``: scratch, >= R x (n + 1)."""
        rows_n, n = block.shape
        b = buf[:rows_n]
        full = b[:, :n]
        np.copyto(full, block, casting="unsafe")
        b[:, n] = 0.0
        if rows_n and np.fmin.reduce(full, axis=None) < 0:
            raise SpecError("traffic_bytes must be >= 0")
        rows = slice(r0, r0 + rows_n)
        rl = np.arange(rows_n)[:, None]
        idx = self.members[self.slot[rows]]           # own region's columns, n-padded
        own = b[rl, idx]
        b[rl, idx] = 0.0                              # full now holds what leaves the region
        same = self.dom_ext[idx] == self.dom[rows, None]
        intra = np.where(same & (idx != np.arange(r0, r0 + rows_n)[:, None]), own, 0.0)
        self.intra_row[rows] = intra.sum(axis=1)
        self.intra_col += np.bincount(idx.ravel(), intra.ravel(), minlength=n + 1)[:n]
        row_sum = own.sum(axis=1)
        if self.inter:
            out = self._rails(full) if self.ro else full.sum(axis=1)
            out_col = full.sum(axis=0)
            row_sum += out.sum(axis=1) if self.ro else out
            if self.by_su:
                self.far_row[rows] = out
                self.far_col += out_col
                near = np.where(same, 0.0, own)
                if self.ro:
                    key = (rl * self.k + self.rail_ext[idx]).ravel()
                    self.near_row[rows] = np.bincount(key, near.ravel(), minlength=rows_n
                                                      * self.k).reshape(rows_n, self.k)
                else:
                    self.near_row[rows] = near.sum(axis=1)
                self.near_col += np.bincount(idx.ravel(), near.ravel(), minlength=n + 1)[:n]
            else:
                self.near_row[rows] = out
                self.near_col += out_col
        else:  # one domain, or domains without a fabric: NVLink only, as the routes give
            row_sum += full.sum(axis=1)
        if rows_n:
            self.max_row_sum = max(self.max_row_sum, float(row_sum.max()))

    def link_entries(self, cluster: ClusterPlan) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(link ids, bytes) pairs of the group's loads, to be summed per link."""
        o, m, k = cluster.offsets, cluster.devices_per_domain, self.k
        dev, a, rail, su = self.dev, self.dom, self.rail, self.su
        links = [o["nvl_down"] + dev]
        size = [self.intra_col]
        if not self.inter:
            return links + [o["nvl_up"] + dev], size + [self.intra_row]
        out_col = self.far_col + self.near_col
        links.append(o["nic_down"] + a * k + rail)
        size.append(out_col)
        if self.ro:
            x = self.far_row + self.near_row
            r = np.arange(k)
            fwd = np.where(r[None, :] != rail[:, None], x, 0.0)    # cross-rail: PXN proxy
            proxy = -(-r * m // k)
            links += [o["nvl_up"] + dev, o["nvl_down"] + (a * m)[:, None] + proxy[None, :],
                      o["nic_up"] + (a * k)[:, None] + r[None, :]]
            size += [self.intra_row + fwd.sum(axis=1), fwd, x]
            if self.by_su:
                links += [o["leaf_up"] + (su * k)[:, None] + r[None, :],
                          o["spine_down"] + su * k + rail]
                size += [self.far_row, self.far_col]
        else:
            links += [o["nvl_up"] + dev, o["nic_up"] + a * k + rail]
            size += [self.intra_row, self.far_row + self.near_row]
            if self.by_su:
                links += [o["leaf_up"] + su, o["spine_down"] + su]
                size += [self.far_row, self.far_col]
        return links, size


class DirectLoads:
    """Accumulates the link loads of a direct all-to-all-v run by ``dev`` (groups x n) at once.

    Feed the rows of every group's matrix in order with ``add_rows`` (a shared (R, n) block or
    a (groups, R, n) stack), then read ``link_bytes()`` and ``max_row_sum``.
    """

    def __init__(self, cluster: ClusterPlan, dev: np.ndarray) -> None:
        self.cluster = cluster
        self.groups = [_Group(cluster, g) for g in dev]
        self.n = dev.shape[1]
        self.rows_done = 0
        self._buf = np.zeros((block_rows(self.n), self.n + 1))

    def add_rows(self, block: np.ndarray) -> None:
        step = self._buf.shape[0]
        shared = block.ndim == 2
        rows_n = block.shape[-2]
        for s in range(0, rows_n, step):
            e = min(rows_n, s + step)
            for gi, grp in enumerate(self.groups):
                part = block[s:e] if shared else block[gi, s:e]
                grp.add_block(self.rows_done + s, part, self._buf)
        self.rows_done += rows_n

    @property
    def max_row_sum(self) -> float:
        """Bytes the busiest rank sends (its row sum, diagonal included)."""
        return max(g.max_row_sum for g in self.groups)

    def link_bytes(self) -> np.ndarray:
        """Bytes per link id of every group's all-to-all-v (the rows fed so far)."""
        if any(g.multi_fabric for g in self.groups):
            raise InfeasibleError("a direct all-to-all across several fat trees joined by DCN "
                                  "is not modelled; split the group per fabric",
                                  reason="algorithm")
        links: list[np.ndarray] = []
        size: list[np.ndarray] = []
        for g in self.groups:
            lk, sz = g.link_entries(self.cluster)
            links += [x.ravel() for x in lk]
            size += [np.broadcast_to(y, x.shape).ravel() for x, y in zip(lk, sz, strict=True)]
        return np.bincount(np.concatenate(links), np.concatenate(size),
                           minlength=self.cluster.num_links)

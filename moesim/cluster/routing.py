"""Routes between devices: NVSwitch one hop, rail-aware fat tree with ECMP groups, torus
dimension-order routing (split over both directions where the axis wraps and both are
shortest), DCN between slices or pods.

Cross-rail traffic on a rail-optimized fat tree first crosses NVLink to the GPU on the
destination's rail, then leaves through that rail's NIC ("cross-rail traffic goes through
NVSwitch first", hardware reference section 3, NV-IB; NCCL's PXN does the same), so every
inter-node byte stays on one rail plane and leaf switches never carry cross-rail flows.
"""

from __future__ import annotations

import numpy as np

from moesim.cluster.plan import ClusterPlan, torus_coords, torus_index


def route(c: ClusterPlan, src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Link ids and rate fractions of the path ``src -> dst`` (empty when ``src == dst``)."""
    links: list[int] = []
    coeff: list[float] = []
    if src != dst:
        if c.torus is not None and c.domain_of(src) == c.domain_of(dst):
            _torus_route(c, src, dst, links, coeff)
        elif c.domain_of(src) == c.domain_of(dst):
            links += [c.offsets["nvl_up"] + src, c.offsets["nvl_down"] + dst]
            coeff += [1.0, 1.0]
        elif c.fat_tree is not None and _same_fabric(c, src, dst):
            _fat_tree_route(c, src, dst, links, coeff)
        else:
            links += [c.offsets["dcn_up"] + src, c.offsets["dcn_down"] + dst]
            coeff += [1.0, 1.0]
    return np.asarray(links, dtype=np.int64), np.asarray(coeff, dtype=float)


def route_pairs(c: ClusterPlan, src: np.ndarray,
                dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The routes of ``src[f] -> dst[f]`` as ``route`` gives them, in CSR form (indptr, link
    ids, rate fractions), one numpy pass per tier instead of one Python call per pair; a
    torus cluster is routed pair by pair (cached ``ClusterPlan.path``)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if c.torus is not None:
        paths = [c.path(int(s), int(d)) for s, d in zip(src, dst, strict=True)]
        lens = np.array([p[0].shape[0] for p in paths], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        if not lens.sum():
            return indptr, np.zeros(0, dtype=np.int64), np.zeros(0)
        return (indptr, np.concatenate([p[0] for p in paths]),
                np.concatenate([p[1] for p in paths]))
    o, m = c.offsets, c.devices_per_domain
    ds, dd = src // m, dst // m
    moving = src != dst
    local = moving & (ds == dd)
    # Slots in route order: NVLink (or PXN, or DCN) up and down, NIC up, leaf-to-spine,
    # spine-to-leaf, NIC down.
    slots = np.zeros((src.shape[0], 6), dtype=np.int64)
    used = np.zeros((src.shape[0], 6), dtype=bool)
    ft = c.fat_tree
    fabric = np.zeros_like(moving)
    if ft is not None:
        fabric = moving & (ds != dd) & (ds // ft.num_domains == dd // ft.num_domains)
        k = c.nics_per_domain
        rail_src = np.asarray(c.nic_local(src % m), dtype=np.int64)
        rail_dst = np.asarray(c.nic_local(dst % m), dtype=np.int64)
        pxn = fabric & (rail_src != rail_dst) if ft.rail_optimized else np.zeros_like(fabric)
        proxy = ds * m + (-(-rail_dst * m // k))
        slots[:, 0] = np.where(pxn, o["nvl_up"] + src, 0) if "nvl_up" in o else 0
        slots[:, 1] = np.where(pxn, o["nvl_down"] + proxy, 0) if "nvl_up" in o else 0
        used[:, 0] = used[:, 1] = pxn
        rail_out = np.where(pxn, rail_dst, rail_src)
        slots[:, 2] = o["nic_up"] + ds * k + rail_out
        rails = k if ft.rail_optimized else 1
        g_src = (ds // ft.domains_per_leaf_group) * rails + (rail_out if ft.rail_optimized else 0)
        g_dst = (dd // ft.domains_per_leaf_group) * rails + (rail_dst if ft.rail_optimized else 0)
        spine = fabric & (g_src != g_dst)
        slots[:, 3], slots[:, 4] = o["leaf_up"] + g_src, o["spine_down"] + g_dst
        slots[:, 5] = o["nic_down"] + dd * k + rail_dst
        used[:, 2] = used[:, 5] = fabric
        used[:, 3] = used[:, 4] = spine
    if local.any():
        slots[local, 0], slots[local, 1] = o["nvl_up"] + src[local], o["nvl_down"] + dst[local]
        used[local, 0] = used[local, 1] = True
    dcn = moving & ~local & ~fabric
    if dcn.any():
        slots[dcn, 0], slots[dcn, 1] = o["dcn_up"] + src[dcn], o["dcn_down"] + dst[dcn]
        used[dcn, 0] = used[dcn, 1] = True
    lens = used.sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    links = slots[used]
    return indptr, links, np.ones(links.shape[0])


def _same_fabric(c: ClusterPlan, src: int, dst: int) -> bool:
    ft = c.fat_tree
    assert ft is not None
    return c.domain_of(src) // ft.num_domains == c.domain_of(dst) // ft.num_domains


def rail_proxy(c: ClusterPlan, domain: int, rail: int) -> int:
    """The device of ``domain`` whose own NIC is ``rail`` (its lowest local index)."""
    m, k = c.devices_per_domain, c.nics_per_domain
    local = -(-rail * m // k)
    return domain * m + local


def _fat_tree_route(c: ClusterPlan, src: int, dst: int, links: list[int],
                    coeff: list[float]) -> None:
    ft = c.fat_tree
    assert ft is not None
    m, k, o = c.devices_per_domain, c.nics_per_domain, c.offsets
    ds, dd = c.domain_of(src), c.domain_of(dst)
    rail_dst = int(c.nic_local(dst % m))
    rail_src = int(c.nic_local(src % m))
    if ft.rail_optimized and rail_src != rail_dst:
        proxy = rail_proxy(c, ds, rail_dst)
        links += [o["nvl_up"] + src, o["nvl_down"] + proxy]
        coeff += [1.0, 1.0]
        rail_src = rail_dst
    links.append(o["nic_up"] + ds * k + rail_src)
    coeff.append(1.0)
    rails = k if ft.rail_optimized else 1
    g_src = (ds // ft.domains_per_leaf_group) * rails + (rail_src if ft.rail_optimized else 0)
    g_dst = (dd // ft.domains_per_leaf_group) * rails + (rail_dst if ft.rail_optimized else 0)
    if g_src != g_dst:
        links += [o["leaf_up"] + g_src, o["spine_down"] + g_dst]
        coeff += [1.0, 1.0]
    links.append(o["nic_down"] + dd * k + rail_dst)
    coeff.append(1.0)


def ici_link(c: ClusterPlan, chip: int, axis: int, direction: int) -> int:
    """Link id of the ICI link leaving ``chip`` along ``axis`` (direction 0: +, 1: -)."""
    assert c.torus is not None
    nax = len(c.torus.dims)
    return c.offsets["ici"] + chip * 2 * nax + axis * 2 + direction


def _torus_route(c: ClusterPlan, src: int, dst: int, links: list[int],
                 coeff: list[float]) -> None:
    t = c.torus
    assert t is not None
    dims, wraps = tuple(t.dims), t.wraps
    base = c.domain_of(src) * c.devices_per_domain
    cur = list(torus_coords(dims, src - base))
    goal = torus_coords(dims, dst - base)
    for axis, n in enumerate(dims):
        if cur[axis] == goal[axis]:
            continue
        fwd = (goal[axis] - cur[axis]) % n
        if wraps[axis]:
            options = [(0, fwd), (1, n - fwd)]
            best = min(h for _, h in options)
            dirs = [(d, h) for d, h in options if h == best]
        else:
            dirs = [(0, fwd)] if goal[axis] > cur[axis] else [(1, cur[axis] - goal[axis])]
        share = 1.0 / len(dirs)
        for direction, hops in dirs:
            pos = list(cur)
            for _ in range(hops):
                links.append(ici_link(c, base + torus_index(dims, pos), axis, direction))
                coeff.append(share)
                step = 1 if direction == 0 else -1
                pos[axis] = (pos[axis] + step) % n
        cur[axis] = goal[axis]

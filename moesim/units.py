"""The one place that converts the units named in spec fields into SI floats.

Inside moesim everything is seconds, bytes, bytes/s and FLOP/s. Spec fields carry their
unit in the name (``_gbyte_per_s``, ``_gbit_per_s``, ``_tflops``, ``_us``, ...); code
multiplies by the factor here and never by a literal.
"""

from __future__ import annotations

# Memory sizes
KIB = 1024.0
MIB = 1024.0**2
GIB = 1024.0**3
KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12

# Bandwidths
GBYTE_PER_S = 1e9  # bytes/s in one GB/s (decimal, as NVLink / HBM / ICI are quoted)
GBIT_PER_S = 1e9 / 8.0  # bytes/s in one Gb/s (as NICs are quoted)

# Compute
TFLOPS = 1e12
GFLOP = 1e9

# Time
S = 1.0
MS = 1e-3
US = 1e-6
NS = 1e-9

# Bytes per element of each dtype the specs name.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element of ``dtype`` (one of :data:`DTYPE_BYTES`)."""
    return DTYPE_BYTES[dtype]


# One convention for every size and count moesim reads (``--size``, ``--tokens``, case
# files): a binary prefix has an "i", a decimal one has none. Ki Mi Gi Ti Pi are 2^10, 2^20,
# 2^30, 2^40, 2^50; k (or K) M G T P are 10^3, 10^6, 10^9, 10^12, 10^15. Sizes may end in
# "B" for bytes (64MiB, 2GB, 10B); a count may use B for billion, as model cards write it
# (2.5B tokens = 2.5G).
BINARY_PREFIXES = {"ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30, "ti": 2.0**40, "pi": 2.0**50}
DECIMAL_PREFIXES = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_quantity(text: str | int | float, *, count: bool = False) -> float:
    """A size in bytes (``count=False``) or a count, by the convention above; ValueError if
    it is neither. ``"1MiB"`` is 1,048,576, ``"1M"`` and ``"1MB"`` 1,000,000 either way."""
    if isinstance(text, (int, float)):
        return float(text)
    low = text.strip().replace(" ", "").replace("_", "").lower()
    if low.endswith("b") and not low.endswith("e"):
        low = low[:-1] + ("g" if count and low[:-1][-1:].isdigit() else "")
    for table, width in ((BINARY_PREFIXES, 2), (DECIMAL_PREFIXES, 1)):
        suffix = low[-width:]
        if len(low) > width and suffix in table:
            return float(low[:-width]) * table[suffix]
    return float(low)


def parse_size(text: str | int | float) -> float:
    """Bytes of ``"1GiB"``, ``"64 MiB"``, ``"2GB"``, ``"16k"`` (16,000), ``"1e9"`` or 4096."""
    return parse_quantity(text)


def parse_count(text: str | int | float) -> float:
    """A count such as ``"15T"``, ``"2.5B"`` (billion), ``"100M"``, ``"1Gi"`` or ``1e12``."""
    return parse_quantity(text, count=True)


SI_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
               (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


# Units an SI prefix attaches to ("32 µs", "1.5 GB/s"); other units take it on the number
# ("497.9k tokens/s") and never go below 1 (0.5 tokens/s stays 0.5).
SI_UNITS = frozenset({"s", "B", "B/s", "FLOP", "FLOP/s", "Hz", "W", "b/s"})


def eng(x: float | int | None, unit: str = "", digits: int = 4) -> str:
    """``x`` in engineering notation with an SI prefix and ``unit``: 497,900 tokens/s is
    "497.9k tokens/s", 1e12 tokens "1T tokens", 3.2e-5 s "32 µs", 1.5e9 B/s "1.5 GB/s";
    "-" for None and NaN. Never scientific notation."""
    if x is None or x != x:
        return "-"
    v = float(x)
    if v in (float("inf"), float("-inf")):
        return f"{'-' if v < 0 else ''}inf {unit}".rstrip()
    si = unit in SI_UNITS
    a = abs(v)
    if v == 0 or (not si and a < 1000):
        return f"{v:.{digits}g} {unit}".rstrip() if a >= 1e-3 or v == 0 else \
            f"{v:.{digits}f} {unit}".rstrip()
    factor, prefix = next(((f, p) for f, p in SI_PREFIXES if a >= f * (1 - 5e-5)),
                          SI_PREFIXES[-1])
    shown = f"{v / factor:.{digits}g}"
    if "e" in shown:  # rounding reached 1000 of this prefix
        shown = f"{v / factor:.0f}"
    if si:
        return f"{shown} {prefix}{unit}"
    return f"{shown}{prefix} {unit}".rstrip()


def ibytes(nbytes: float, digits: int = 4) -> str:
    """A byte size with a binary prefix, as nccl-tests and memory sizes are quoted:
    "1 GiB", "64 MiB", "32 KiB", "10 B"."""
    for unit, factor in (("PiB", 2.0**50), ("TiB", 2.0**40), ("GiB", 2.0**30),
                         ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if abs(nbytes) >= factor:
            return f"{nbytes / factor:.{digits}g} {unit}"
    return f"{nbytes:.{digits}g} B"


def gib(nbytes: float | None, decimals: int = 2) -> str:
    """Memory as moesim shows it everywhere: GiB (2^30 bytes, as nvidia-smi and the
    frameworks report it)."""
    return "-" if nbytes is None else f"{nbytes / GIB:,.{decimals}f} GiB"

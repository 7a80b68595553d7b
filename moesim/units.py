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


def parse_size(text: str | int | float) -> float:
    """Parse a byte size such as ``"1GiB"``, ``"64 MiB"``, ``"1e9"`` or ``4096`` into bytes."""
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip().replace(" ", "")
    factors = {
        "kib": KIB, "mib": MIB, "gib": GIB, "tib": 1024.0**4,
        "kb": KB, "mb": MB, "gb": GB, "tb": TB,
        "k": KIB, "m": MIB, "g": GIB, "b": 1.0,
    }
    low = s.lower()
    for suffix in sorted(factors, key=len, reverse=True):
        if low.endswith(suffix):
            return float(low[: -len(suffix)]) * factors[suffix]
    return float(low)


def parse_count(text: str | int | float) -> float:
    """Parse a count such as ``"15T"``, ``"2.5B"``, ``"100M"`` or ``1e12``."""
    if isinstance(text, (int, float)):
        return float(text)
    s = text.strip().upper()
    factors = {"K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12, "P": 1e15}
    if s and s[-1] in factors:
        return float(s[:-1]) * factors[s[-1]]
    return float(s)

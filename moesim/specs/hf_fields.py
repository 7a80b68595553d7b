"""What the model importers share: a config mapping that remembers what was read, the MoE
layer pattern fitted to moesim's (dense layers, then every Nth layer MoE), activations.

Every failure is a :class:`~moesim.errors.SpecError` naming the source file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moesim.errors import SpecError

_REQUIRED: Any = object()

# Hugging Face ``hidden_act`` of a gated MLP (gate * act(up)) and moesim's name for it.
GATED_ACTIVATIONS = {"silu": "swiglu", "swish": "swiglu", "gelu": "geglu",
                     "gelu_new": "geglu", "gelu_pytorch_tanh": "geglu", "gelu_fast": "geglu"}


class ConfigFields:
    """A config mapping whose reads are recorded, so unread fields can be reported.

    ``prefix`` is the dotted path of the mapping inside the file (``text_config.`` for the
    text model of a multimodal config); errors name ``prefix + key``."""

    def __init__(self, data: Mapping[str, Any], file: str, source: str, prefix: str = "") -> None:
        self.data = data
        self.file = file
        self.source = source
        self.prefix = prefix
        self.read: set[str] = set()

    def has(self, key: str) -> bool:
        self.read.add(key)
        return self.data.get(key) is not None

    def raw(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        value = self.data.get(key)
        return default if value is None else value

    def error(self, key: str, message: str) -> SpecError:
        """A SpecError naming ``key`` and its value in this file."""
        shown = repr(self.data.get(key))
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return SpecError(f"{self.prefix}{key}={shown} {message}", file=self.file,
                         field=self.prefix + key)

    def get_int(self, key: str, default: Any = _REQUIRED, *, minimum: int = 1) -> int:
        """An integer field (``None`` counts as absent); below ``minimum`` is an error."""
        self.read.add(key)
        value = self.data.get(key)
        if value is None:
            if default is _REQUIRED:
                raise SpecError(f"{self.prefix}{key} is missing; {self.source} configs need it",
                                file=self.file, field=self.prefix + key)
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if value < minimum:
            raise self.error(key, f"must be >= {minimum}")
        return value

    def get_bool(self, key: str, default: bool) -> bool:
        self.read.add(key)
        value = self.data.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def get_str(self, key: str, default: str) -> str:
        self.read.add(key)
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        return value

    def get_int_list(self, key: str) -> list[int] | None:
        self.read.add(key)
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.error(key, "must be a list of integers")
        return list(value)

    def unread(self) -> list[str]:
        return sorted(k for k in self.data if k not in self.read)


def gated_activation(fields: ConfigFields, key: str = "hidden_act") -> str:
    """moesim's activation for a gated MLP whose ``hidden_act`` is ``fields[key]``."""
    act = fields.get_str(key, "silu")
    if act not in GATED_ACTIVATIONS:
        raise fields.error(key, "is not an activation moesim models for a gated MLP; "
                           f"supported: {', '.join(sorted(GATED_ACTIVATIONS))}")
    return GATED_ACTIVATIONS[act]


def moesim_pattern(num_layers: int, num_dense: int, frequency: int) -> list[bool]:
    """Which layers moesim makes MoE for (num_dense_layers, moe_layer_frequency)."""
    return [i >= num_dense and (i - num_dense) % frequency == frequency - 1
            for i in range(num_layers)]


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    parts: list[str] = []
    start = prev = indices[0]
    for i in [*indices[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


def fit_layer_pattern(moe: list[bool], where: str) -> tuple[int, int, str | None]:
    """(num_dense_layers, moe_layer_frequency, note) for the per-layer MoE flags ``moe``.

    moesim places MoE layers as "d dense layers, then every f-th layer". When the source's
    pattern is of that form it is reproduced exactly (note None). Otherwise the nearest: the
    same number of MoE and dense layers (so the same parameters and FLOPs), at the source's
    spacing where it fits, and a note that says so (``where`` names the source fields).
    """
    n, total = sum(moe), len(moe)
    if n == 0:
        return 0, 1, None
    idx = [i for i, m in enumerate(moe) if m]
    for freq in range(1, total + 1):
        dense = idx[0] - freq + 1
        if dense >= 0 and moesim_pattern(total, dense, freq) == moe:
            return dense, freq, None
    gap = idx[1] - idx[0] if n > 1 else 1
    freq = gap if total - n * gap >= 0 else 1
    dense = total - n * freq
    note = (f"MoE layers {_ranges(idx)} ({where}) are not 'dense layers, then every Nth': "
            f"moesim places the same {n} MoE layers after {dense} dense ones, one in every "
            f"{freq} layers (equal parameters and FLOPs; pipeline "
            "stages may balance differently)")
    return dense, freq, note

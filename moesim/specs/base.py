"""The base class of every spec: frozen, no unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenSpec(BaseModel):
    """A frozen pydantic model that rejects unknown fields."""

    # allow_inf_nan=False: an infinite bandwidth or a NaN count is a typo, never a spec.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True,
                              allow_inf_nan=False)

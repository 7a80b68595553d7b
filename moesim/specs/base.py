"""The base class of every spec: frozen, no unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FrozenSpec(BaseModel):
    """A frozen pydantic model that rejects unknown fields."""

    # allow_inf_nan=False: an infinite bandwidth or a NaN count is a typo, never a spec.
    # defer_build: a class builds its validator when first used, not when its module is
    # imported; a command uses a few dozen of the ~90 spec and result classes it imports.
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True,
                              allow_inf_nan=False, defer_build=True)

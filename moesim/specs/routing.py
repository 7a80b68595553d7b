"""How tokens choose experts, and how skewed the choices are."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from moesim.specs import bounds as B
from moesim.specs.base import FrozenSpec


class TopKRouterSpec(FrozenSpec):
    """Token choice: each token takes its top-k experts (Switch k=1, GShard k=2, DeepSeek k=8)."""

    kind: Literal["top_k"] = "top_k"


class ExpertChoiceRouterSpec(FrozenSpec):
    """Each expert takes its top tokens: capacity = tokens x capacity_factor / experts."""

    kind: Literal["expert_choice"] = "expert_choice"


class HashRouterSpec(FrozenSpec):
    """A fixed hash of the token id picks the experts (Hash layers)."""

    kind: Literal["hash"] = "hash"


RouterSpec = Annotated[
    TopKRouterSpec | ExpertChoiceRouterSpec | HashRouterSpec, Field(discriminator="kind")
]


class BalancedLoadSpec(FrozenSpec):
    """Every expert gets exactly its share (what force-balanced benchmarks run)."""

    kind: Literal["balanced"] = "balanced"
    expert_order: Literal["random", "contiguous"] = Field(
        default="random",
        description="which k experts a token takes: 'random' (k distinct experts spread like a "
        "trained router's: Megatron's moe_router_force_load_balancing) or 'contiguous' (token t "
        "takes experts (t k + j) mod E, j < k: NeMo Automodel's FakeBalancedGate), which "
        "reaches fewer EP ranks per token and so sends fewer DeepEP copies")


class MultinomialLoadSpec(FrozenSpec):
    """An ideal router's choices sampled at finite batch: uniform probabilities, multinomial noise."""

    kind: Literal["multinomial"] = "multinomial"


class ZipfLoadSpec(FrozenSpec):
    """Expert popularity p_i proportional to 1 / rank^exponent, sampled multinomially."""

    kind: Literal["zipf"] = "zipf"
    exponent: float = Field(ge=0.0, le=10.0)


class DirichletLoadSpec(FrozenSpec):
    """Expert popularity drawn per layer from Dirichlet(concentration), then sampled."""

    kind: Literal["dirichlet"] = "dirichlet"
    concentration: float = Field(gt=0.0)


class HistogramLoadSpec(FrozenSpec):
    """Measured per-layer expert loads from a file (JSON or YAML: a list of lists, layer x expert)."""

    kind: Literal["histogram"] = "histogram"
    path: str


LoadSpec = Annotated[
    BalancedLoadSpec | MultinomialLoadSpec | ZipfLoadSpec | DirichletLoadSpec | HistogramLoadSpec,
    Field(discriminator="kind"),
]


class RoutingSpec(FrozenSpec):
    """The router, its capacity, its load model and its limits."""

    router: RouterSpec = Field(default_factory=TopKRouterSpec)
    capacity_factor: float | None = Field(
        default=None, gt=0.0, le=B.MAX_EXPERTS, description="None: dropless; else capacity = ceil(T k CF / E)")
    pad_to_capacity: bool = Field(default=False, description="pad every expert to its capacity")
    load: LoadSpec = Field(default_factory=BalancedLoadSpec)
    max_nodes_per_token: int | None = Field(
        default=None, ge=1, le=B.MAX_DEVICES, description="node-limited routing (DeepSeek-V3: 4)")
    num_redundant_experts: int = Field(
        default=0, ge=0, le=B.MAX_EXPERTS, description="extra copies of hot experts placed greedily (EPLB)")
    seed: int | None = Field(default=None, ge=0, le=B.MAX_SEED, description="None: derived from the scenario seed")

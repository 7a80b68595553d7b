from __future__ import annotations

from pathlib import Path

import pytest
from plan_paths import FAKE, FAKE_MEMORY, HERE, MIXTRAL, ROOT  # noqa: F401


@pytest.fixture
def mixtral_sweep(tmp_path: Path) -> Path:
    """EP over 1, 2, 3, 4, 8 (3 does not divide Mixtral's 8 experts) x micro-batch 1, 2."""
    p = tmp_path / "sweep.yaml"
    p.write_text(
        "name: mixtral-ep\n"
        f"base: {MIXTRAL.as_posix()}\n"
        "axes:\n"
        "  - {path: parallelism.expert_parallel_degree, values: [1, 2, 3, 4, 8]}\n"
        "  - {path: parallelism.micro_batch_size, values: [1, 2]}\n", encoding="utf-8")
    return p

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
# plan_fakes is imported by dotted name (``plan_fakes:evaluate``), also in worker processes.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
FAKE = "plan_fakes:evaluate"
FAKE_MEMORY = "plan_fakes:memory"


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

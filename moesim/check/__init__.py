"""``moesim check``: published measurements against moesim's predictions.

``run_check(paths, fidelity=...)`` predicts every measured point of the case files and
scenarios under ``paths`` (default ``scenarios/published``) and returns a
:class:`CheckReport` (rows and the mean absolute error per category). Case file formats are in
:mod:`moesim.check.cases`; docs/validation.md lists every published case and how it is expressed.
"""

from moesim.check.cases import (
    CASE_METRICS,
    CollectiveCaseSpec,
    DeepEPCaseSpec,
    GemmCaseSpec,
    GroupedGemmCaseSpec,
    RatioCaseSpec,
    load_case,
)
from moesim.check.evaluate import CheckRow, result_field
from moesim.check.suite import CategorySummary, CheckReport, discover, mape, run_check, summarize

__all__ = ["CASE_METRICS", "CategorySummary", "CheckReport", "CheckRow", "CollectiveCaseSpec",
           "DeepEPCaseSpec", "GemmCaseSpec", "GroupedGemmCaseSpec", "RatioCaseSpec", "discover", "load_case", "mape",
           "result_field", "run_check", "summarize"]

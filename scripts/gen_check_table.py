"""Print the README's check table (markdown), or rewrite its marked block in place.

    python scripts/gen_check_table.py                 # print the block
    python scripts/gen_check_table.py --write README.md

Runs the published suite (scenarios/published) at analytic fidelity, the fidelity the
accuracy-regression test (tests/validation/test_check_suite.py) uses, so the stated mean
errors are the ones the test compares against.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from moesim.check import run_check
from moesim.check.render import check_block, replace_block
from moesim.io import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, default=None, help="README to rewrite in place")
    ap.add_argument("--fidelity", default="analytic", choices=("analytic", "des"))
    args = ap.parse_args()
    report = run_check([ROOT / "scenarios" / "published"], fidelity=args.fidelity)
    block = check_block(report).replace(str(ROOT) + "/", "")
    if args.write is None:
        print(block)
        return
    write_text_atomic(args.write, replace_block(args.write.read_text(encoding="utf-8"), block))
    print(f"rewrote the check-table block of {args.write}")


if __name__ == "__main__":
    main()

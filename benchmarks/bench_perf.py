"""The performance page's suite (:func:`dscore.studies.perf.run_suite`) at the default profile's sizes
(``--quick``: the smoke profile's), on the CPU and, when CUDA is present, on the GPU."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from dscore.studies import perf

from . import cli

NAME = "perf"
PARAMS = Path(__file__).resolve().parent.parent / "params"


def run(quick: bool = False) -> dict:
    settings = yaml.safe_load((PARAMS / ("smoke" if quick else "default") / "perf_bench.yaml").read_text())
    rows = perf.run_suite(**settings, log=lambda line: print(line, file=sys.stderr))
    targets = perf.summary(rows)
    out = [{"case": r["case"], "metric": r["metric"], "value": r["value"], "unit": r["unit"]} for r in rows]
    return {"quick": quick, "rows": out, "targets": targets, "ok": all(t["met"] for t in targets)}


def main(argv: list[str] | None = None) -> int:
    return cli(NAME, run, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

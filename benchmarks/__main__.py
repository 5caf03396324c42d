"""Run every ``benchmarks/bench_*.py`` (each in a fresh process) and print one results table.

Usage: ``python -m benchmarks [--quick] [--threads N] [NAME ...]`` where NAME selects ``bench_NAME.py``.
Every benchmark module must accept ``--quick`` and ``--threads N``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from . import RESULTS_DIR

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def format_table(results: list[dict]) -> str:
    rows = [("benchmark", "case", "metric", "value", "unit")]
    for res in results:
        for r in res["rows"]:
            value = r["value"]
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            rows.append((res["name"], r["case"], r["metric"], text, r.get("unit", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all): " + ", ".join(discover()))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads in every benchmark (default: torch's choice)")
    args = parser.parse_args(argv)
    available = discover()
    names = args.names or available
    unknown = sorted(set(names) - set(available))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available}")
    results, failed = [], []
    for name in names:
        cmd = [sys.executable, "-m", f"benchmarks.bench_{name}"] + (["--quick"] if args.quick else [])
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        print(f"running {name} …", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(proc.stdout, file=sys.stderr)
            failed.append(name)
            continue
        results.append(json.loads((RESULTS_DIR / f"{name}.json").read_text()))
    if results:
        print(format_table(results))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

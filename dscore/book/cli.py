"""The command line: ``python -m dscore.book build | run | check | plan | gpu-check | prefill``.

Usage (from a checkout)::

    python -m dscore.book build --profile default      # execute what changed, then build the HTML
    python -m dscore.book run tour --profile smoke     # execute one notebook
    python -m dscore.book run tour -f my.yaml -p epochs 3   # … with your own parameters (unknown keys rejected)
    python -m dscore.book run dream_main -p evaluation.idc.epochs 300   # a dotted key changes one nested value
    python -m dscore.book run adq_main --profile paper --dry-run   # check a profile end to end in seconds
    python -m dscore.book plan --profile paper                      # what a profile costs, before running it
    python -m dscore.book gpu-check                                 # first thing to run on a GPU machine
    python -m dscore.book check                        # validate params/ against the notebooks
    python -m dscore.book sync-params                  # write params/smoke/ into the notebooks' parameters cells
    python -m dscore.book publish REMOTE               # push _build/html to REMOTE's gh-pages branch
    torchrun --nproc_per_node=4 -m dscore.book prefill --profile default   # fill the cache in 4 processes
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..paths import repo_root
from .params import PROFILES, BookError, check_profile, notebook_names, read_overrides, sync_parameter_cells
from .rules import check_all
from .runner import build, execute

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dscore.book", description="Execute the notebooks with a parameter profile and build the Jupyter Book.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="execute changed notebooks and build the HTML book")
    p_build.add_argument("--profile", default=os.environ.get("PROFILE", "default"))
    p_build.add_argument("--only", nargs="*", help="execute only these notebooks")
    p_build.add_argument("--force", action="store_true", help="re-execute even if up to date")
    p_build.add_argument("--no-html", action="store_true", help="execute notebooks only")
    p_build.add_argument("--dry-run", action="store_true",
                         help="one tiny step of every study: checks the profile end to end; the numbers mean nothing")
    p_build.add_argument("-f", "--file", action="append", default=[], metavar="YAML",
                         help="a YAML file of parameter values for every page that declares them (repeatable)")
    p_build.add_argument("-p", "--parameter", action="append", nargs=2, default=[], metavar=("KEY", "VALUE"),
                         help="one parameter for every page that declares it (-p dataset fashion_mnist), KEY dotted "
                              "to reach inside a mapping; merged key by key over -f and the profile (repeatable)")
    p_build.add_argument("--workers", type=int, default=1,
                         help="kernels per page sharing its cells (default 1); with more than one, every kernel "
                              "computes with one thread on a CPU, and the numbers are those of a one-thread build")
    p_run = sub.add_parser("run", help="execute one notebook into book/nb/ (with your own parameters: -f, -p)")
    p_run.add_argument("name")
    p_run.add_argument("--profile", default="smoke", help="the params/<profile>/ file the values start from")
    p_run.add_argument("-f", "--file", action="append", default=[], metavar="YAML",
                       help="a YAML file of parameter values (repeatable; later files win)")
    p_run.add_argument("-p", "--parameter", action="append", nargs=2, default=[], metavar=("KEY", "VALUE"),
                       help="one parameter, the value parsed as YAML, KEY dotted to reach inside a mapping "
                            "(evaluation.epochs); merged key by key over -f and the profile (repeatable)")
    p_run.add_argument("--force", action="store_true")
    p_run.add_argument("--dry-run", action="store_true",
                       help="one tiny step of every study: checks the parameters end to end; the numbers mean nothing")
    p_run.add_argument("--workers", type=int, default=1,
                       help="kernels sharing the page's cells (default 1); see build --workers")
    sub.add_parser("check", help="validate notebooks and params for every profile")
    p_sync = sub.add_parser("sync-params", help="write the smoke profile's values into the notebooks' parameters "
                                                "cells (a smoke value is edited once, in params/smoke/)")
    p_sync.add_argument("--check", action="store_true", help="write nothing; exit 1 when a notebook differs")
    p_plan = sub.add_parser("plan", help="what a profile asks for and an estimate of its cost, here and on a GPU, "
                                         "before running it")
    p_plan.add_argument("--profile", default=os.environ.get("PROFILE", "default"))
    p_plan.add_argument("--only", nargs="*", help="plan only these pages")
    p_plan.add_argument("--gpu-tflops", type=float, help="the GPU's peak TFLOP/s (default: an H100's dense fp32, 67)")
    p_plan.add_argument("--utilisation", type=float, help="the share of that peak the loops reach (default 0.3)")
    p_gpu = sub.add_parser("gpu-check", help="what to run first on a GPU machine: each engine on CPU and CUDA, the "
                                             "benchmarks, one paper-profile page (dry run); one table")
    p_gpu.add_argument("--page", default="dream_interval", help="the page run with the paper profile (dry run)")
    p_gpu.add_argument("--no-page", action="store_true", help="skip the page")
    sub.add_parser("doctor", help="what this machine has for dscore: Python, torch/CUDA, dataset, cache, Chromium")
    p_publish = sub.add_parser("publish", help="push the built book (_build/html) to a git remote's gh-pages branch")
    p_publish.add_argument("remote", help="a git URL or path")
    p_publish.add_argument("--branch", default="gh-pages")
    p_prefill = sub.add_parser("prefill", help="compute pages' artefacts into the cache, split over processes "
                                               "(torchrun --nproc_per_node=N -m dscore.book prefill …)")
    p_prefill.add_argument("names", nargs="*", help="pages to prefill (default: every page)")
    p_prefill.add_argument("--profile", default=os.environ.get("PROFILE", "default"))
    p_prefill.add_argument("--rank", type=int, help="this process's place without torchrun (default: $RANK or 0)")
    p_prefill.add_argument("--world", type=int, help="number of processes without torchrun (default: $WORLD_SIZE or 1)")
    p_prefill.add_argument("--root", help="the checkout whose pages to prefill (default: this one)")
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        if args.command == "build":
            build(root, args.profile, only=args.only, force=args.force, html=not args.no_html, dry_run=args.dry_run,
                  files=args.file, pairs=[tuple(p) for p in args.parameter], workers=args.workers)
        elif args.command == "run":
            check_profile(args.profile)
            if args.name not in notebook_names(root):
                raise ValueError(f"unknown notebook {args.name!r}; available: {notebook_names(root)}")
            overrides = read_overrides(root, args.name, args.file, [tuple(p) for p in args.parameter])
            execute(root, args.name, args.profile, force=args.force, overrides=overrides, dry_run=args.dry_run,
                    workers=args.workers)
        elif args.command == "plan":
            from .plan import main as plan

            return plan(args.profile, pages=args.only, root=root, gpu_tflops=args.gpu_tflops,
                        utilisation=args.utilisation)
        elif args.command == "gpu-check":
            from .gpucheck import format_table, run_check

            rows, ok = run_check(root, page=None if args.no_page else args.page)
            print(format_table(rows))
            return 0 if ok else 1
        elif args.command == "sync-params":
            changed = sync_parameter_cells(root, check=args.check)
            verb = "differ from" if args.check else "rewritten from"
            print(f"[dscore.book] {len(changed)} notebooks {verb} params/smoke/" + (f": {changed}" if changed else ""))
            return 1 if args.check and changed else 0
        elif args.command == "doctor":
            from .doctor import main as doctor

            return doctor()
        elif args.command == "publish":
            from .publish import publish

            publish(root, args.remote, branch=args.branch)
        elif args.command == "prefill":
            from . import prefill

            return prefill.main(args.names, args.profile, rank=args.rank, world=args.world,
                                root=Path(args.root) if args.root else root)
        else:
            names = check_all(root)
            print(f"[dscore.book] {len(names)} notebooks × {len(PROFILES)} profiles: params OK")
    except (BookError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0

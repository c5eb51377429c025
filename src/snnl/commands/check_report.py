"""`snnl check-report`: every figure is in the HTML report, intact, and the page renders, opening
on the claims table (C1-C7 with their verdicts, each linked to entries of the report)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-report", help="check that a Snakemake report shows every figure and opens on the claims")
    p.add_argument("report", help="the HTML report (results/report.html)")
    p.add_argument("--figures", default="results/figures", help="folder whose PNGs (subfolders too) must all be in the report")
    p.add_argument("--screenshot", help="save a headless-Chromium screenshot of the report here")
    p.add_argument("--no-browser", action="store_true",
                   help="skip the Chromium rendering check (categories shown, the landing page's claims table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.pipeline.report import ReportError, check_rendered, check_report, find_chromium

    figures = sorted(str(p) for p in Path(args.figures).rglob("*.png"))
    if not figures:
        raise ReportError(f"no PNG figures under {args.figures}")
    problems = check_report(args.report, figures)
    rendered = "skipped"
    if not args.no_browser:
        if find_chromium() is None:
            rendered = "skipped (Chromium not installed)"
        else:
            problems += check_rendered(args.report, args.screenshot)
            rendered = "ok, opens on the claims table" if not problems else "failed"
    for p in problems:
        print(f"problem: {p}")
    if problems:
        raise ReportError(f"{len(problems)} problem(s) in {args.report}")
    print(f"{args.report}: {len(figures)} figures present and intact; rendering in Chromium: {rendered}")
    return 0

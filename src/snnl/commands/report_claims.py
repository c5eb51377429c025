"""`snnl report-claims`: the claims table of the report's landing page.

    snnl report-claims --claims results/tables/claims.md \\
        --items results/figures/dynamics.png results/tables/accuracy.md ... \\
        --out results/tables/claims.rst

Writes the overview table of claims.md (claim, statement, verdict, evidence with its
interval) as reStructuredText, with a "rests on" column linking each claim to the items of
--items it rests on (snnl.pipeline.report.CLAIM_EVIDENCE: C1 the dynamics figure, C2 the GAN
figures, C3 the accuracy table, ...; every claim claims.md). --items are the run's report items
(the rule passes the DAG's figures and tables), so a figure a config does not make is never
linked. workflow/report/workflow.rst includes the output, so `snakemake --report` opens on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report-claims", help="the claims table of the report's landing page (reStructuredText)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--claims", required=True, help="claims.md of `snnl tables` (results/tables/claims.md)")
    p.add_argument("--items", nargs="*", default=[], metavar="PATH",
                   help="the report items the claims may link (figures and tables, as the Snakefile names them)")
    p.add_argument("--out", required=True, help="the reStructuredText file to write (results/tables/claims.rst)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.atomic import atomic_write_text
    from snnl.pipeline.report import ReportError, claims_landing

    claims = Path(args.claims)
    if not claims.is_file():
        raise ReportError(f"--claims {claims} does not exist; build it with `snnl tables` (rule tables)")
    text = claims_landing(claims.read_text(encoding="utf-8"), args.items, source=str(claims))
    atomic_write_text(args.out, text)
    print(f"{args.out}: the claims table of {claims}, linked to {len(args.items)} report item(s)")
    return 0

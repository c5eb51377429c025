"""Check a Snakemake HTML report: every figure is in it, intact, and the page renders.

`snakemake --report` writes one self-contained HTML file whose results (figures, tables) are
embedded as data URIs in a JavaScript object ``var results = {...};``. The check:

1. every expected figure (e.g. each PNG under results/figures/) has an entry;
2. each PNG entry's data URI decodes to a valid PNG identical to the file on disk;
3. where Chromium is available, the page is loaded headless and the rendered DOM must show
   the report's categories (so the JavaScript app ran) and, on the landing page, the claims
   table: every claim C1-C7 with a verdict, each link of the table leading to an entry of the
   report; a screenshot can be saved.

The landing page's claims table is written here too (:func:`claims_landing`, `snnl
report-claims`): the overview table of results/tables/claims.md as reStructuredText, with a
"rests on" column linking each claim to the report's figures and tables it rests on
(:data:`CLAIM_EVIDENCE`); workflow/report/workflow.rst includes it. The links use Snakemake's
own mechanism: in any report .rst, ``name.png`_`` links to the report item of that basename.
"""

from __future__ import annotations

import base64
import fnmatch
import html.parser
import json
import re
import shutil
import string
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from snnl.errors import SnnlError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class ReportError(SnnlError):
    """The report is missing, unreadable or incomplete."""


def embedded(html: str, name: str) -> dict:
    """The JSON object assigned to ``var <name> = {...};`` in the report."""
    m = re.search(rf'var {name} = (?=\{{")', html)  # the data object, not library code
    if not m:
        raise ReportError(f"the report has no `{name}` object: is it a Snakemake report?")
    decoder = json.JSONDecoder()
    obj, _ = decoder.raw_decode(html, m.end())
    return obj


def decode_data_uri(uri: str) -> bytes:
    header, _, payload = uri.partition(",")
    if ";base64" in header:
        return base64.b64decode(payload)
    return urllib.parse.unquote_to_bytes(payload)


def check_report(report: str | Path, figures: list[str | Path]) -> list[str]:
    """Problems found (empty when the report holds every figure, intact)."""
    report = Path(report)
    if not report.is_file():
        raise ReportError(f"report {report} does not exist; build it with `snakemake --report {report}`")
    html = report.read_text(encoding="utf-8", errors="replace")
    results = embedded(html, "results")
    problems = []
    for fig in figures:
        key = str(fig)
        entry = results.get(key)
        if entry is None:
            problems.append(f"{key}: not in the report")
            continue
        data = decode_data_uri(entry.get("data_uri", ""))
        if key.endswith(".png") and not data.startswith(PNG_MAGIC):
            problems.append(f"{key}: embedded image is not a valid PNG")
        elif Path(fig).is_file() and data != Path(fig).read_bytes():
            problems.append(f"{key}: embedded copy differs from the file on disk")
    for key, entry in results.items():
        if entry.get("mime_type") == "image/png" and not decode_data_uri(entry.get("data_uri", "")).startswith(PNG_MAGIC):
            problems.append(f"{key}: embedded image is empty or broken")
    return problems


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium_args(chromium: str, profile: str) -> list[str]:
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=15000",
    ]


def render(report: str | Path, screenshot: str | Path | None = None, chromium: str | None = None) -> str:
    """The DOM of the report after its JavaScript ran, from headless Chromium."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise ReportError("Chromium is not installed (apt-get install chromium); cannot render the report")
    url = Path(report).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([*_chromium_args(chromium, profile), "--dump-dom", url],
                             capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise ReportError(f"Chromium failed on {report}: {out.stderr.strip()[-500:]}")
        if screenshot is not None:
            subprocess.run([*_chromium_args(chromium, profile), "--window-size=1400,1000",
                            f"--screenshot={Path(screenshot).resolve()}", url],
                           capture_output=True, text=True, timeout=180)
    return out.stdout


def check_rendered(report: str | Path, screenshot: str | Path | None = None) -> list[str]:
    """Problems with the rendered page: every report category must appear in the DOM, and the
    landing page must show the claims table, linked to the report's entries (:func:`landing_problems`)."""
    html = Path(report).read_text(encoding="utf-8", errors="replace")
    categories = embedded(html, "categories")
    dom = render(report, screenshot)
    problems = [f"category {c!r} not shown by the rendered page" for c in categories if c not in dom]
    return problems + landing_problems(dom, embedded(html, "results"), categories)


# ---------------------------------------------------------------------------------------
# the landing page: the claims table, each claim linked to what it rests on

CLAIM_EVIDENCE: dict[str, tuple[str, ...]] = {
    "C1": ("results/figures/dynamics.png", "results/tables/dynamics.*"),
    "C2": ("results/figures/gan_*.png", "results/figures/gan/*.png"),
    "C3": ("results/tables/accuracy.md",),
    "C4": ("results/figures/*tsne_layers*.png",),
    "C5": ("results/figures/*confidence*.png", "results/tables/ood.md"),
    "C6": ("results/tables/detection.md",),
    "C7": ("results/figures/*tsne_gradients*.png",),
}
"""The figures and tables each claim rests on, by claim id: glob patterns (:func:`fnmatch.fnmatchcase`,
``*`` also crosses folders) over the report items of a run. A claim row "C3 (official)" or
"C1 (long)" rests on what its id prefix names; a pattern that matches no item links nothing."""
EVERY_CLAIM = ("results/tables/claims.md",)  # each claim's cells, rule and verdict in full
CLAIM_ID = re.compile(r"C\d+")
RESTS_ON = "rests on"
SHOW_RESULT = re.compile(r"javascript:app\.showResultInfo\('([^']*)'\)")
SHOW_CATEGORY = re.compile(r"javascript:app\.showCategory\('([^']*)'\)")


def claim_id(cell: str) -> str | None:
    """The claim id a table row starts with ("C3" for "C3", "**C3**" or "C3 (official)"), or None."""
    m = CLAIM_ID.match(cell.strip().strip("*` "))
    return m.group() if m else None


def claim_links(claim: str, items: Iterable[str]) -> list[str]:
    """The report items (paths as the Snakefile names them) that claim row ``claim`` rests on:
    those matching :data:`CLAIM_EVIDENCE` for its id, in that order, then :data:`EVERY_CLAIM`;
    nothing for a row that is not a claim."""
    cid = claim_id(claim)
    if cid is None:
        return []
    items = sorted({PurePosixPath(i).as_posix() for i in items})
    links: list[str] = []
    for pattern in (*CLAIM_EVIDENCE.get(cid, ()), *EVERY_CLAIM):
        links += [i for i in items if fnmatch.fnmatchcase(i, pattern) and i not in links]
    return links


def markdown_table(markdown: str, source: str = "the Markdown") -> tuple[str, list[str], list[list[str]]]:
    """The paragraph before the first pipe table of a Markdown document, the table's header
    and its rows (cells stripped, ``\\|`` unescaped). ReportError when there is no table."""
    lines = markdown.splitlines()
    start = next((k for k, line in enumerate(lines) if line.startswith("|")), None)
    if start is None or start + 1 >= len(lines) or not re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[start + 1]):
        raise ReportError(f"{source} has no table; rebuild it with `snnl tables`")

    def cells(line: str) -> list[str]:
        return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]

    end = next((k for k in range(start + 2, len(lines)) if not lines[k].startswith("|")), len(lines))
    before = [line for line in lines[:start] if line.strip() and not line.startswith("#")]
    return " ".join(before), cells(lines[start]), [cells(line) for line in lines[start + 2:end]]


def _rst_escaped(text: str) -> str:
    return "".join("\\" + ch if ch in string.punctuation else ch for ch in text)


def rst_inline(markdown: str) -> str:
    """Markdown inline text as reStructuredText: ``**strong**`` and ```code``` kept, every other
    ASCII punctuation backslash-escaped (so ``|x|``, ``a_``, ``*`` or a leading ``-`` stay text)."""
    out = []
    for token in re.split(r"(\*\*[^*]+\*\*|`[^`]+`)", markdown):
        if len(token) > 4 and token.startswith("**") and token.endswith("**"):
            out.append(f"**{_rst_escaped(token[2:-2])}**")
        elif len(token) > 2 and token.startswith("`") and token.endswith("`"):
            out.append(f"``{token[1:-1]}``")
        else:
            out.append(_rst_escaped(token))
    return "".join(out)


def rst_link(item: str) -> str:
    """A link to a report item, as Snakemake's report resolves it: its basename as an RST reference."""
    return f"`{PurePosixPath(item).name}`_"


def claims_landing(markdown: str, items: Iterable[str], source: str = "claims.md") -> str:
    """The landing page's claims table in reStructuredText: the overview table of ``markdown``
    (results/tables/claims.md: claim, statement, verdict, per dataset, evidence with its
    interval), every column as it is, plus a "rests on" column linking each claim row to the
    ``items`` (this run's report items) it rests on (:func:`claim_links`); then the paragraph
    that introduces the table (the decision rules, the intervals' level)."""
    intro, header, rows = markdown_table(markdown, source)
    items = list(items)
    table = [".. list-table::", "   :header-rows: 1", "   :widths: auto", "   :class: snnl-claims", ""]
    for k, cells in enumerate([header, *rows]):
        links = RESTS_ON if k == 0 else ", ".join(rst_link(i) for i in claim_links(cells[0], items))
        texts = [rst_inline(c) for c in cells] + [links]
        table += [f"   {'*' if j == 0 else ' '} - {t}".rstrip() for j, t in enumerate(texts)]
    return "\n".join(table) + "\n\n" + (rst_inline(intro) + "\n" if intro else "")


class _PageTables(html.parser.HTMLParser):
    """Every ``<table>`` of a page as rows of cells, each cell ``(text, [href, ...])``, and the
    text of docutils' error output (``system-message`` and ``problematic`` elements)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, list[str]]]]] = []
        self.errors: list[str] = []
        self._cell: list | None = None
        self._error_depth = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if self._error_depth:
            self._error_depth += 1
        elif "system-message" in classes or "problematic" in classes:
            self._error_depth = 1
            self.errors.append("")
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1]:
            self._cell = ["", []]
            self.tables[-1][-1].append(self._cell)
        elif tag == "a" and self._cell is not None and attrs.get("href"):
            self._cell[1].append(attrs["href"])

    def handle_endtag(self, tag: str) -> None:
        if self._error_depth:
            self._error_depth -= 1
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[0] += data
        if self._error_depth:
            self.errors[-1] += data


def _link_problem(href: str, results: dict, categories: dict) -> str | None:
    if m := SHOW_RESULT.fullmatch(href):
        key = urllib.parse.unquote(m.group(1))
        return None if key in results else f"link to {key!r} in the claims table: no such entry in the report"
    if m := SHOW_CATEGORY.fullmatch(href):
        key = urllib.parse.unquote(m.group(1))
        return None if key in categories else f"link to category {key!r} in the claims table: no such category"
    return f"link {href!r} in the claims table leads to no entry of the report"


def landing_problems(dom: str, results: dict, categories: dict, claims: Sequence[str] | None = None,
                     verdicts: Sequence[str] | None = None) -> list[str]:
    """Problems with the landing page of a rendered report (``dom``: its DOM after the JavaScript
    ran): it must show a claims table (a table with a "verdict" column) holding a row for every
    claim of ``claims`` (default C1-C7) whose verdict cell shows one of ``verdicts`` (default:
    the four verdict words of :mod:`snnl.tables.stats`) and which links to at least one report
    item; every link of the table must lead to an entry of ``results`` or ``categories`` (the
    report's embedded objects); and the page must show no reStructuredText error."""
    if claims is None or verdicts is None:
        from snnl.tables.stats import INCONCLUSIVE, NOT_REPRODUCED, NOT_RUN, REPRODUCED
        from snnl.tables.verdicts import CLAIMS

        claims = CLAIMS if claims is None else claims
        verdicts = (NOT_REPRODUCED, REPRODUCED, INCONCLUSIVE, NOT_RUN) if verdicts is None else verdicts
    page = _PageTables()
    page.feed(dom)
    problems = [f"the landing page shows a reStructuredText error: {' '.join(e.split())[:300]}"
                for e in page.errors]
    table = next((t for t in page.tables if t and any(c[0].strip().lower() == "verdict" for c in t[0])), None)
    if table is None:
        return problems + ["the landing page shows no claims table (a table with a 'verdict' column): "
                           "workflow/report/workflow.rst must include results/tables/claims.rst (rule "
                           "report_claims); build it with `snakemake`, then the report again"]
    column = next(k for k, c in enumerate(table[0]) if c[0].strip().lower() == "verdict")
    rows = [(claim_id(r[0][0]), r) for r in table[1:] if r]
    for claim in claims:
        mine = [r for cid, r in rows if cid == claim]
        if not mine:
            problems.append(f"claim {claim}: no row in the landing page's claims table")
        for r in mine:
            name = " ".join(r[0][0].split())
            verdict = r[column][0].strip().lower() if column < len(r) else ""
            if not any(verdict.startswith(v) for v in verdicts):
                problems.append(f"claim {name}: its verdict {verdict!r} is none of {', '.join(verdicts)}")
            if not any(SHOW_RESULT.fullmatch(h) for c in r for h in c[1]):
                problems.append(f"claim {name}: links to no figure or table of the report")
    problems += [p for r in table for c in r for h in c[1] if (p := _link_problem(h, results, categories))]
    return problems

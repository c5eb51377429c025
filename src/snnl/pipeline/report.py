"""Check a Snakemake HTML report: every figure is in it, intact, and the page renders.

`snakemake --report` writes one self-contained HTML file whose results (figures, tables) are
embedded as data URIs in a JavaScript object ``var results = {...};``. The check:

1. every expected figure (e.g. each PNG under results/figures/) has an entry;
2. each PNG entry's data URI decodes to a valid PNG identical to the file on disk;
3. where Chromium is available, the page is loaded headless and the rendered DOM must show
   the report's categories (so the JavaScript app ran), and a screenshot can be saved.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

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
    """Problems with the rendered page: every report category must appear in the DOM."""
    html = Path(report).read_text(encoding="utf-8", errors="replace")
    categories = embedded(html, "categories")
    dom = render(report, screenshot)
    return [f"category {c!r} not shown by the rendered page" for c in categories if c not in dom]

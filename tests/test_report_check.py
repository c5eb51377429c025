"""snnl.pipeline.report on hand-made reports: it must notice a missing or broken figure."""

from __future__ import annotations

import base64
import json
from pathlib import PurePosixPath

import pytest

from snnl.pipeline.report import ReportError, check_report

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _report(tmp_path, results: dict) -> str:
    html = "<script>var results = " + json.dumps(results) + ";\nvar categories = {\"A\": {}};</script>"
    path = tmp_path / "report.html"
    path.write_text(html)
    return str(path)


def _entry(data: bytes) -> dict:
    return {"name": "f.png", "mime_type": "image/png",
            "data_uri": "data:image/png;charset=utf8;filename=f.png;base64," + base64.b64encode(data).decode()}


def test_complete_report_passes(tmp_path):
    fig = tmp_path / "a.png"
    fig.write_bytes(PNG)
    report = _report(tmp_path, {str(fig): _entry(PNG)})
    assert check_report(report, [str(fig)]) == []


def test_missing_broken_and_stale_figures_are_reported(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for f in (a, b, c):
        f.write_bytes(PNG)
    report = _report(tmp_path, {str(a): _entry(b"not a png"), str(c): _entry(PNG + b"x")})
    problems = check_report(report, [str(a), str(b), str(c)])
    assert any("a.png" in p and "not a valid PNG" in p for p in problems)
    assert any("b.png" in p and "not in the report" in p for p in problems)
    assert any("c.png" in p and "differs" in p for p in problems)


def test_not_a_report(tmp_path):
    path = tmp_path / "x.html"
    path.write_text("<html></html>")
    with pytest.raises(ReportError, match="Snakemake report"):
        check_report(path, [])
    with pytest.raises(ReportError, match="does not exist"):
        check_report(tmp_path / "missing.html", [])


# --- the landing page: the claims table, each claim linked to what it rests on ------------------

CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
VERDICT_WORDS = ("not reproduced", "reproduced", "inconclusive", "not run")
ITEMS = [
    "results/figures/dynamics.png", "results/figures/gan/toy_seed0.png", "results/figures/gan/toy_seed0_samples.png",
    "results/figures/toy_tsne_layers.png", "results/figures/toy_tsne_gradients.png",
    "results/figures/toy_confidence.png", "results/figures/temperature_curve_toy.png",
    "results/figures/synthetic_compare.png", "results/tables/accuracy.md", "results/tables/ood.md",
    "results/tables/detection.md", "results/tables/claims.md",
]


def _claims_md(rows: list[list[str]], header=("claim", "the paper's claim", "verdict", "evidence")) -> str:
    """A claims.md as `snnl tables` writes it: a heading, an intro paragraph, the overview table."""
    head = "| " + " | ".join(header) + " |\n|" + ":---|" * len(header) + "\n"
    body = "".join("| " + " | ".join(r) + " |\n" for r in rows)
    return ("# Claims C1-C7: verdicts\n\nDecided by the rules of `docs/RESULTS.md`: 95% intervals.\n\n"
            + head + body + "\n## C1: details\n\n| part | x |\n|:---|:---|\n| C1 | 1 |\n")


def _rows(**change) -> list[list[str]]:
    rows = {c: [c, f"statement {c}", "**inconclusive**", "toy: +0.1 [-0.2, +0.4] (n=3)"] for c in CLAIM_IDS}
    rows.update(change)
    return [r for r in rows.values() if r is not None]


def _targets(items) -> str:
    """The link targets Snakemake appends to the landing text (snakemake/report/__init__.py, rst_links)."""
    from urllib.parse import quote

    return "\n\n" + "".join(f".. _{PurePosixPath(i).name}: javascript:app.showResultInfo('{quote(i)}')\n"
                            for i in items) + ".. _Tables: javascript:app.showCategory('Tables')\n"


def _landing_html(rst: str, items) -> str:
    from docutils.core import publish_parts

    return publish_parts(rst + _targets(items), writer="html")["html_body"]


def test_claim_links_follow_the_claim_id_and_only_what_the_run_made():
    from snnl.pipeline.report import claim_links

    t, f = "results/tables/", "results/figures/"
    assert claim_links("C1 (long)", ITEMS) == [f + "dynamics.png", t + "claims.md"]
    assert claim_links("C2", ITEMS) == [f + "gan/toy_seed0.png", f + "gan/toy_seed0_samples.png", t + "claims.md"]
    assert claim_links("C2", ["results/figures/gan_toy.png", t + "claims.md"]) == [
        "results/figures/gan_toy.png", t + "claims.md"]
    for row in ("C3", "**C3**", "C3 (official)"):
        assert claim_links(row, ITEMS) == [t + "accuracy.md", t + "claims.md"]
    assert claim_links("C4", ITEMS) == [f + "toy_tsne_layers.png", t + "claims.md"]
    assert claim_links("C5", ITEMS) == [f + "toy_confidence.png", t + "ood.md", t + "claims.md"]
    assert claim_links("C6", ITEMS) == [t + "detection.md", t + "claims.md"]
    assert claim_links("C7", ITEMS) == [f + "toy_tsne_gradients.png", t + "claims.md"]
    # a figure the config does not make is not linked; a row that is no claim links nothing
    assert claim_links("C2", [i for i in ITEMS if "/gan/" not in i]) == [t + "claims.md"]
    assert claim_links("C12", ITEMS) == [t + "claims.md"]
    assert claim_links("notes", ITEMS) == []


def test_landing_table_keeps_every_cell_as_written():
    """claims_landing's RST, parsed by docutils (warnings are errors): the table holds the
    Markdown cells' text exactly, even cells that are RST markup, and links resolve."""
    from docutils import nodes
    from docutils.core import publish_doctree

    from snnl.pipeline.report import claims_landing

    tricky = ["C3 (official)", "a |sub| and a_ ref_, *star, [1]_ and \\| pipe", "**not reproduced**",
              "- -0.5 [-1, +0.1] (n=3)"]
    md = _claims_md(_rows(C3=tricky, C4=["C4", "1. enumerated", "**reproduced**", "#. auto"]))
    md = md.replace("a |sub| and a_ ref_, *star, [1]_ and \\| pipe", "a \\|sub\\| and a_ ref_, *star, [1]_ and \\\\| pipe")
    rst = claims_landing(md, ITEMS)
    doc = publish_doctree(rst + _targets(ITEMS), settings_overrides={"halt_level": 2, "report_level": 2})
    (table,) = list(doc.findall(nodes.table))
    rows = [[e.astext() for e in row.findall(nodes.entry)] for row in table.findall(nodes.row)]
    assert rows[0] == ["claim", "the paper's claim", "verdict", "evidence", "rests on"]
    c3 = next(r for r in rows if r[0] == "C3 (official)")
    assert c3 == ["C3 (official)", "a |sub| and a_ ref_, *star, [1]_ and \\| pipe", "not reproduced",
                  "- -0.5 [-1, +0.1] (n=3)", "accuracy.md, claims.md"]
    assert next(r for r in rows if r[0] == "C4")[1:3] == ["1. enumerated", "reproduced"]
    assert [r[0] for r in rows[1:]] == ["C1", "C2", "C3 (official)", "C4", "C5", "C6", "C7"]
    refs = [(r.astext(), r.get("refuri")) for r in table.findall(nodes.reference)]
    assert ("dynamics.png", "javascript:app.showResultInfo('results/figures/dynamics.png')") in refs
    assert ("ood.md", "javascript:app.showResultInfo('results/tables/ood.md')") in refs
    assert "Decided by the rules of docs/RESULTS.md: 95% intervals." in doc.astext()


def test_no_table_in_the_claims_markdown_is_an_error():
    from snnl.pipeline.report import ReportError, claims_landing

    with pytest.raises(ReportError, match="claims.md has no table.*snnl tables"):
        claims_landing("# Claims\n\nnothing yet\n", ITEMS)


def _results(items) -> dict:
    return {i: {"name": PurePosixPath(i).name} for i in items}


def test_landing_check_passes_the_claims_table_and_names_each_fault():
    from snnl.pipeline.report import claims_landing, landing_problems

    def problems(md=None, items=ITEMS, results=ITEMS, rst_extra="", dom=None):
        if dom is None:
            rst = claims_landing(md or _claims_md(_rows()), items) + rst_extra
            dom = _landing_html(rst, ITEMS)
        return landing_problems(dom, _results(results), {"Tables": {}}, CLAIM_IDS, VERDICT_WORDS)

    assert problems() == []
    # the landing page of before: a description, no table
    old = _landing_html("Reproduction of ... The claims table with verdicts is under `Tables`_.\n", ITEMS)
    assert any("shows no claims table" in p for p in problems(dom=old))
    assert any("claim C4: no row" in p for p in problems(_claims_md(_rows(C4=None))))
    bad_verdict = problems(_claims_md(_rows(C2=["C2", "s", "**maybe**", "x"])))
    assert any("claim C2: its verdict 'maybe'" in p for p in bad_verdict)
    no_links = problems(items=[])
    assert len([p for p in no_links if "links to no figure or table" in p]) == 7
    missing = problems(results=[i for i in ITEMS if not i.endswith("accuracy.md")])
    assert any("'results/tables/accuracy.md'" in p and "no such entry" in p for p in missing)
    broken = problems(rst_extra="\nsee `gone.png`_\n")
    assert any("reStructuredText error" in p for p in broken)
    # an extra column, an added row ("C1 (long)") and a second table do not confuse it
    rows = [[r[0], "entangled - baseline", *r[1:]] for r in _rows()] + [["C1 (long)", "-", "s", "**not run**", "-"]]
    wide = _claims_md(rows, ("claim", "comparison", "the paper's claim", "verdict", "evidence"))
    assert problems(wide) == []
    assert any("claim C1 (long): its verdict" in p
               for p in problems(wide.replace("**not run**", "**?**")))


# --- a real Snakemake report, rendered by headless Chromium ------------------------------------

MINI_SNAKEFILE = '''
config["pipeline"] = {"datasets": ["toy"], "seeds": [0, 1, 2], "regimes": ["baseline", "entangled"]}


report: "workflow/report/workflow.rst"


rule all:
    input:
        "results/tables/claims.rst",


rule results:
    output:
        fig=report("results/figures/dynamics.png", category="E4 per-layer dynamics"),
        acc=report("results/tables/accuracy.md", category="Tables"),
        claims=report("results/tables/claims.md", category="Tables"),
    shell:
        "cp inputs/dynamics.png {output.fig} && cp inputs/accuracy.md {output.acc}"
        " && cp inputs/claims.md {output.claims}"


rule report_claims:
    input:
        claims="results/tables/claims.md",
    output:
        "results/tables/claims.rst",
    params:
        report_items=[
            "results/figures/dynamics.png",
            "results/tables/accuracy.md",
            "results/tables/claims.md",
        ],
    shell:
        "snnl report-claims --claims {input.claims} --items {params.report_items} --out {output}"
'''


def _mini_report(tmp_path, landing: str | None = None):
    """A two-rule workflow with the project's landing page (workflow/report/workflow.rst, or
    ``landing``) and stylesheet, run and reported by Snakemake: the report's path."""
    import shutil
    import subprocess

    from helpers.workflow import BIN, ENV, ROOT
    from PIL import Image

    (tmp_path / "inputs").mkdir()
    (tmp_path / "workflow" / "report").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "inputs" / "dynamics.png")
    (tmp_path / "inputs" / "accuracy.md").write_text("| dataset | accuracy |\n|:---|---:|\n| toy | 0.9 |\n")
    (tmp_path / "inputs" / "claims.md").write_text(_claims_md(_rows(C2=["C2", "s", "**reproduced**", "+0.2 (n=1)"])))
    (tmp_path / "Snakefile").write_text(MINI_SNAKEFILE)
    for name in ("workflow.rst", "style.css"):
        shutil.copy(ROOT / "workflow" / "report" / name, tmp_path / "workflow" / "report" / name)
    if landing is not None:
        (tmp_path / "workflow" / "report" / "workflow.rst").write_text(landing)
    for args in (["--cores", "1"], ["--report", "report.html", "--report-stylesheet", "workflow/report/style.css"]):
        out = subprocess.run([str(BIN / "snakemake"), *args], cwd=tmp_path, env=ENV, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return tmp_path / "report.html"


@pytest.fixture
def chromium():
    from helpers.services import skip_or_fail

    from snnl.pipeline.report import find_chromium

    if find_chromium() is None:
        skip_or_fail("Chromium not installed (`make debian-tools` installs it with apt-get)")


def test_report_opens_on_the_claims_table_in_chromium(tmp_path, chromium):
    from snnl.pipeline.report import check_rendered, check_report

    report = _mini_report(tmp_path)
    assert check_report(report, []) == []
    shot = tmp_path / "landing.png"
    assert check_rendered(report, shot) == []
    assert shot.read_bytes()[:8] == PNG[:8]


def test_report_whose_landing_lacks_the_claims_fails_the_check(tmp_path, chromium):
    from snnl.pipeline.report import check_rendered

    old = "Reproduction of Frosst, Papernot & Hinton. The claims table with verdicts is under `Tables`_.\n"
    problems = check_rendered(_mini_report(tmp_path, landing=old))
    assert any("shows no claims table" in p for p in problems), problems

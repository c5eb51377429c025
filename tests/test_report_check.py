"""snnl.pipeline.report on hand-made reports: it must notice a missing or broken figure."""

from __future__ import annotations

import base64
import json

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

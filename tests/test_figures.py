"""snnl.figures: the shared style, and atomic, non-interactive figure writing."""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib
import pytest
from matplotlib.colors import to_rgb

from snnl import figures
from snnl.figures import (
    INPUT_STYLE,
    LAST_LAYER_STYLE,
    REGIME_COLORS,
    layer_styles,
    regime_color,
    save_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_backend_is_agg_even_when_an_interactive_one_is_requested():
    code = "import snnl.figures, matplotlib; print(matplotlib.get_backend())"
    env = {**os.environ, "MPLBACKEND": "TkAgg", "DISPLAY": ":0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().lower() == "agg"
    assert matplotlib.get_backend().lower() == "agg"


def test_regime_colours_are_fixed_distinct_and_used_by_regime_color():
    from snnl.regimes import REGIMES

    assert set(REGIME_COLORS) == set(REGIMES)  # every regime has its colour, and only regimes do
    assert len({to_rgb(c) for c in REGIME_COLORS.values()}) == len(REGIMES)
    for regime in REGIMES:
        assert regime_color(regime) == REGIME_COLORS[regime]
    assert regime_color("something else") not in REGIME_COLORS.values()


def test_layer_styles_mark_the_last_layer_and_the_inputs():
    styles = layer_styles(["input", "conv1", "conv2", "logits"])
    assert list(styles) == ["input", "conv1", "conv2", "logits"]
    assert styles["logits"] == LAST_LAYER_STYLE and styles["input"] == INPUT_STYLE
    assert styles["conv1"]["linestyle"] == "-" and styles["conv1"]["color"] != styles["conv2"]["color"]
    assert to_rgb(styles["logits"]["color"]) == (0.0, 0.0, 0.0) and styles["logits"]["linestyle"] == "--"
    # without an input entry the last hidden layer is still the marked one
    assert layer_styles(["a", "b"], input_name=None)["b"] == LAST_LAYER_STYLE
    assert layer_styles(["only"])["only"] == LAST_LAYER_STYLE


def test_save_figure_writes_a_png_atomically_and_closes_the_figure(tmp_path):
    import matplotlib.pyplot as plt

    fig = _figure()
    path = save_figure(fig, tmp_path / "sub" / "fig.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in path.parent.iterdir()) == ["fig.png"]  # no temporary left
    assert not plt.fignum_exists(fig.number)
    from PIL import Image

    with Image.open(path) as im:  # written at the project's dpi
        assert round(im.info["dpi"][0]) == figures.DPI >= 120


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")
    fig = _figure()

    def broken(fh, **kwargs):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]

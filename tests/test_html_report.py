"""The run report ``<runs>/report/index.html``: pages, links, summary, figures, and how it looks.

A fake run folder is built in ``tmp_path``: two executed notebooks (made with nbformat, each with a
text output and a PNG output; the second marked as failed by papermill), a third notebook never
run, a figures folder with one real PNG and a ``summary.md``. The index is then opened in headless
Chromium and its screenshot must show a page (not blank, not all white) with the figure in it.
Chromium absent: skipped locally, a failure in CI (``CI`` set), where ``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from zsar.workbook.html_report import format_seconds, markdown_html, write_report  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
STEMS = ["00_alpha", "01_beta", "02_never_run"]
FIGURE_RED = (0.85, 0.05, 0.05)  # the test figure is mostly this colour, so its pixels can be found


def png_bytes(color=FIGURE_RED, size=(6, 3)) -> bytes:
    """A real matplotlib PNG: a thick bar chart in ``color`` (dominant) with axes and a title."""
    fig, ax = plt.subplots(figsize=size, dpi=80)
    ax.bar(range(4), [3, 5, 4, 6], width=0.95, color=color)
    ax.set_title("test figure")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def executed_notebook(text: str, failed: bool = False) -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: one markdown cell, one code cell with text + PNG outputs."""
    image = nbformat.v4.new_output("display_data", data={
        "image/png": base64.b64encode(png_bytes((0.1, 0.3, 0.8))).decode(), "text/plain": "<Figure>"})
    stream = nbformat.v4.new_output("stream", name="stdout", text=text + "\n")
    code = nbformat.v4.new_code_cell("print('hello')", outputs=[stream, image], execution_count=1)
    code.metadata["papermill"] = {"status": "failed" if failed else "completed"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A notebook"), code])
    nb.metadata["papermill"] = {"exception": failed, "parameters": {"SEED": 0}}
    return nb


@pytest.fixture
def fake_run(tmp_path):
    """``(runs_dir, figures_dir, notebooks)``: two executed notebooks (the 2nd failed), one never run."""
    runs, figures, sources = tmp_path / "runs", tmp_path / "figures", tmp_path / "notebooks"
    figures.mkdir()
    sources.mkdir()
    (figures / "01_beta_bars.png").write_bytes(png_bytes())
    notebooks = [sources / f"{stem}.ipynb" for stem in STEMS]
    for nb_path, text, failed in zip(notebooks[:2], ["alpha output text", "beta output text"], [False, True]):
        (runs / nb_path.stem).mkdir(parents=True)
        nbformat.write(executed_notebook(text, failed), runs / nb_path.stem / nb_path.name)
    (runs / "summary.md").write_text("# Workbook results summary\n\n## 00_alpha  (12 s)\n\n"
                                     "| metric | value |\n|---|---|\n| top1 | 0.4321 |\n| note | a<b |\n")
    return runs, figures, notebooks


def test_report_links_every_rendered_page_in_order(fake_run):
    runs, figures, notebooks = fake_run
    (runs / "report").mkdir()
    (runs / "report" / "02_never_run.html").write_text("stale page of an earlier run")
    index = write_report(runs, figures, notebooks, {"00_alpha": 12.4, "01_beta": 3725.0})

    assert index == runs / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<title>zsar workbook report</title>" in page and str(runs) in page
    links = re.findall(r'<a href="([^"]+\.html)">', page)
    assert links == ["00_alpha.html", "01_beta.html"]  # run order; the notebook never run has no page
    for link, text in zip(links, ["alpha output text", "beta output text"]):
        rendered = (index.parent / link).read_text(encoding="utf-8")
        assert text in rendered and "data:image/png;base64," in rendered
    assert not (runs / "report" / "02_never_run.html").exists()  # stale page removed
    rows = re.findall(r"<tr><td class=\"num\">\d+</td>(.*?)</tr>", page)
    assert [r for r in rows if "00_alpha" in r][0].count(">12s<") == 1 and 'class="ran"' in rows[0]
    assert 'class="failed"' in rows[1] and "1h02m" in rows[1]
    assert 'class="missing"' in rows[2] and "unknown" in rows[2]
    assert "<td>top1</td><td>0.4321</td>" in page and "a&lt;b" in page  # summary table, escaped
    assert '<img src="figures/01_beta_bars.png"' in page
    assert (index.parent / "figures" / "01_beta_bars.png").read_bytes() == (figures / "01_beta_bars.png").read_bytes()


def test_report_drops_figures_no_longer_in_the_figures_folder(fake_run):
    runs, figures, notebooks = fake_run
    write_report(runs, figures, notebooks, {})
    (figures / "01_beta_bars.png").unlink()
    page = write_report(runs, figures, notebooks, {}).read_text(encoding="utf-8")
    assert "<img" not in page and not list((runs / "report" / "figures").glob("*.png"))


def test_small_helpers():
    assert [format_seconds(s) for s in (None, float("nan"), 4.4, 185, 7260)] == \
        ["unknown", "unknown", "4s", "3m05s", "2h01m"]
    assert markdown_html("# T\n\n| a | b |\n|:--|--:|\n| `x` | 1 |\ntext") == \
        "<h3>T</h3>\n<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td><code>x</code></td><td>1</td></tr>\n" \
        "</table>\n<p>text</p>"


def screenshot(url: str, out: Path, profile: Path, size: str = "1200,1600") -> None:
    """Screenshot ``url`` with headless Chromium into ``out`` (no sandbox, no network chatter)."""
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size={size}", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and out.is_file(), f"chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}"


def test_index_renders_in_headless_chromium(fake_run, tmp_path):
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} not installed (apt-get install chromium; .ci/run installs it in CI)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    runs, figures, notebooks = fake_run
    index = write_report(runs, figures, notebooks, {"00_alpha": 12.4, "01_beta": 3.0})
    shot = tmp_path / "index.png"
    screenshot(index.as_uri(), shot, tmp_path / "chromium-profile")

    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 10, "the screenshot is (nearly) uniform: nothing was drawn"
    assert (pixels < 250).any(axis=-1).mean() > 0.01, "the screenshot is all white"
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    assert red.sum() > 2000, "the figure (red bars) is not on the page: the <img> did not load"
    link_blue = (pixels[..., 2] > 150) & (pixels[..., 0] < 100) & (pixels[..., 1] < 100)
    assert link_blue.sum() > 50, "no link-coloured text: the notebook links are not visible"


def test_workbook_main_writes_the_report_unless_told_not_to(fake_run, monkeypatch, capsys):
    from zsar.workbook import runner

    runs, figures, notebooks = fake_run
    ran = []
    monkeypatch.setenv("ZSAR_CACHE", str(runs.parent / "cache"))  # where earlier wall times are kept
    monkeypatch.setattr(runner, "list_notebooks", lambda folder=None: notebooks)
    monkeypatch.setattr(runner, "run_notebook", lambda nb, *args, **kwargs: ran.append(nb.stem))
    argv = ["--only", "00_alpha", "--runs-dir", str(runs), "--figures-dir", str(figures)]

    assert runner.main([*argv, "--no-report"]) == 0
    assert not (runs / "report").exists() and "report:" not in capsys.readouterr().out
    assert runner.main(argv) == 0
    index = runs / "report" / "index.html"
    out = capsys.readouterr().out
    assert f"[zsar.workbook] report: {index}\n" in out
    assert out.rstrip().endswith(f"[zsar.workbook] 1 figure(s) in {figures}")
    assert ran == ["00_alpha", "00_alpha"]
    page = index.read_text(encoding="utf-8")
    assert re.findall(r'<a href="([^"]+\.html)">', page) == ["00_alpha.html", "01_beta.html"]


def test_a_failing_notebook_stops_the_run_and_still_leaves_summary_and_report(fake_run, monkeypatch, capsys):
    from zsar.workbook import runner

    runs, figures, notebooks = fake_run
    monkeypatch.setenv("ZSAR_CACHE", str(runs.parent / "cache"))
    monkeypatch.setattr(runner, "list_notebooks", lambda folder=None: notebooks)
    ran = []

    def run(nb, *args, **kwargs):
        ran.append(nb.stem)
        raise RuntimeError("cell 4 raised ValueError: bad parameter")

    monkeypatch.setattr(runner, "run_notebook", run)
    assert runner.main(["--runs-dir", str(runs), "--figures-dir", str(figures)]) == 1
    out = capsys.readouterr().out
    assert ran == ["00_alpha"]  # the later notebooks, which need its outputs, are not started
    assert "00_alpha.ipynb FAILED after 0s: cell 4 raised ValueError: bad parameter" in out
    assert (runs / "summary.md").is_file() and (runs / "report" / "index.html").is_file()

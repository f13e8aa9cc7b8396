"""zsar.report.results_plots: aggregation against a naive reference, and what each figure draws."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from zsar.evaluation.tables import summarize
from zsar.report.results_plots import errorbar_lines, grouped_bars, mean_std_by, signed_bars, training_curves


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def long_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"method": m, "split": s, "epoch": e, "loss": float(rng.normal(3 - e, 0.1)),
             "acc": float(rng.uniform())}
            for m in ("a", "b") for s in range(3) for e in range(4)]
    return pd.DataFrame(rows)


def test_mean_std_by_matches_a_naive_loop():
    frame = long_frame()
    frame.loc[0, "acc"] = np.nan  # NaN rows are skipped, not averaged in
    stats = mean_std_by(frame, ["method", "epoch"], "acc")
    for _, row in stats.iterrows():
        values = [v for m, e, v in zip(frame.method, frame.epoch, frame.acc)
                  if m == row.method and e == row.epoch and not math.isnan(v)]
        assert row.n == len(values)
        assert row["mean"] == pytest.approx(sum(values) / len(values))
        mean = sum(values) / len(values)
        naive_std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        assert row["std"] == pytest.approx(naive_std)
    assert list(stats.method.unique()) == ["a", "b"]  # first-seen order


def test_mean_std_by_single_row_has_nan_std_and_unknown_columns_raise():
    frame = pd.DataFrame({"k": [1, 2], "v": [0.5, 0.25]})
    stats = mean_std_by(frame, "k", "v")
    assert stats["std"].isna().all() and list(stats["mean"]) == [0.5, 0.25]
    with pytest.raises(KeyError, match="nope"):
        mean_std_by(frame, "nope", "v")


def test_errorbar_lines_draws_one_line_per_hue_at_the_means():
    frame = long_frame()
    fig, ax = plt.subplots()
    drawn = errorbar_lines(ax, frame, "epoch", "loss", hue="method", labels={"a": "method A"})
    assert list(drawn) == ["a", "b"] and len(ax.lines) >= 2
    line = ax.lines[0]
    expected = frame[frame.method == "a"].groupby("epoch")["loss"].mean().to_numpy()
    assert np.allclose(line.get_ydata(), expected)
    assert [t.get_text() for t in ax.legend().get_texts()] == ["method A", "b"]


def test_training_curves_has_a_panel_per_metric_and_says_when_one_is_missing():
    fig = training_curves(long_frame(), [("loss", "training loss"), ("acc", "val"), ("absent", "x")])
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["training loss", "val", "x"]
    assert len(axes[0].lines) >= 2 and not axes[2].lines
    assert "no 'absent' recorded" in [t.get_text() for t in axes[2].texts]


def test_grouped_bars_heights_and_errors_follow_the_summary():
    results = [{"method": m, "split": s, "metrics": {"top1": 0.1 * (i + 1) + 0.01 * s, "h": 0.2}}
               for i, m in enumerate(["x", "y"]) for s in range(3)]
    summary = summarize(results)
    fig = grouped_bars(summary, ["top1", "h"], labels={"top1": "top-1"}, reference={"top1": 0.05})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == sorted(round(v, 6) for v in [11.0, 21.0, 20.0, 20.0])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["top-1", "h"]
    assert len(ax.collections) >= 1  # the reference line
    # error bars only where there is spread: the 'h' metric has std 0 for both methods
    caps = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert sum(len(c.lines[2][0].get_segments()) for c in caps) == 2


def test_signed_bars_sorts_colours_by_sign_and_truncates():
    values = pd.Series({f"c{i}": v for i, v in enumerate(np.linspace(-0.5, 0.5, 11))})
    fig = signed_bars(values, max_rows=6, title="gains")
    ax = fig.axes[0]
    assert "6 of 11 shown" in ax.get_title()
    widths = [p.get_width() for p in ax.patches]
    assert len(widths) == 6 and widths == sorted(widths)
    assert widths[0] == pytest.approx(-50.0) and widths[-1] == pytest.approx(50.0)
    assert ax.patches[0].get_facecolor() != ax.patches[-1].get_facecolor()

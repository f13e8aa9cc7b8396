"""Metrics against hand-computed values and scikit-learn; tables with bold best and header line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from zsar.evaluation import (TableHeader, accuracy_report, confusion_matrix, gzsl_accuracy,
                             harmonic_mean, mean_class_accuracy, mean_std, save_tables, summarize,
                             to_latex, to_markdown, top1_accuracy, topk_accuracy)

# 5 samples, 4 classes. Ranking per row (best first):
# 0: 0 1 2 3  (label 0: top1)      1: 2 1 0 3  (label 1: top2)
# 2: 3 2 1 0  (label 1: top3)      3: 0 3 1 2  (label 3: top2)      4: 3 0 1 2  (label 3: top1)
SCORES = np.array([[0.9, 0.5, 0.2, 0.1],
                   [0.3, 0.6, 0.8, 0.0],
                   [0.0, 0.2, 0.3, 0.9],
                   [0.9, 0.2, 0.1, 0.5],
                   [0.5, 0.4, 0.1, 0.7]])
LABELS = np.array([0, 1, 1, 3, 3])


def test_topk_by_hand():
    assert top1_accuracy(SCORES, LABELS) == pytest.approx(2 / 5)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(4 / 5)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(5 / 5)
    assert topk_accuracy(SCORES, LABELS, 4) == 1.0
    with pytest.raises(ValueError, match="k=5"):
        topk_accuracy(SCORES, LABELS, 5)


def test_top1_agrees_with_argmax_on_ties_and_takes_tensors():
    scores = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]], dtype=torch.bfloat16)
    labels = torch.tensor([1, 1])
    expected = float((scores.float().argmax(1) == labels).float().mean())
    assert top1_accuracy(scores, labels) == expected == 0.5


def test_mean_class_accuracy_by_hand_and_against_sklearn():
    # class 0: 1/1 correct, class 1: 0/2, class 3: 1/2 -> (1 + 0 + 0.5) / 3
    assert mean_class_accuracy(SCORES, LABELS) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(200, 7)), rng.integers(0, 7, 200)
    assert mean_class_accuracy(scores, labels) == pytest.approx(
        balanced_accuracy_score(labels, scores.argmax(1)))
    report = accuracy_report(SCORES, LABELS, ks=(1, 3, 5))
    assert report == pytest.approx({"top1": 0.4, "top3": 1.0, "mean_class_acc": 0.5})


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(SCORES.argmax(1), LABELS, 4)
    expected = np.zeros((4, 4), int)
    for true, pred in [(0, 0), (1, 2), (1, 3), (3, 0), (3, 3)]:
        expected[true, pred] += 1
    assert np.array_equal(cm, expected)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix([0, 3], [0, 1], 3)


def test_gzsl_seen_unseen_harmonic_by_hand():
    # seen classes {0, 1}, unseen {2, 3}
    scores = np.array([[0.9, 0.1, 0.0, 0.0],    # seen 0 -> 0 right
                       [0.1, 0.8, 0.7, 0.0],    # seen 1 -> 1 right
                       [0.6, 0.1, 0.5, 0.0],    # unseen 2 -> 0 wrong (2 after calibration 0.2)
                       [0.1, 0.0, 0.0, 0.9]])   # unseen 3 -> 3 right
    labels = np.array([0, 1, 2, 3])
    plain = gzsl_accuracy(scores, labels, seen_classes=[0, 1])
    assert plain == pytest.approx({"seen": 1.0, "unseen": 0.5, "harmonic": 2 * 0.5 / 1.5})
    # gamma = 0.2 moves sample 2 to class 2, and sample 1 (0.6 vs 0.7) to unseen class 2
    calibrated = gzsl_accuracy(scores, labels, seen_classes=[0, 1], calibration=0.2)
    assert calibrated == pytest.approx({"seen": 0.5, "unseen": 1.0, "harmonic": 2 * 0.5 / 1.5})
    with pytest.raises(ValueError, match="unseen-class"):
        gzsl_accuracy(scores[:2], labels[:2], seen_classes=[0, 1])


def test_gzsl_per_class_differs_from_per_sample():
    scores = np.eye(3)[[0, 0, 0, 1, 2]]  # predictions 0 0 0 1 2
    labels = np.array([0, 0, 1, 1, 2])   # seen {0, 1}: class 0 2/2, class 1 1/2
    per_class = gzsl_accuracy(scores, labels, [0, 1])
    per_sample = gzsl_accuracy(scores, labels, [0, 1], per_class=False)
    assert per_class["seen"] == pytest.approx(0.75) and per_sample["seen"] == pytest.approx(3 / 4)
    labels = np.array([0, 1, 1, 1, 2])   # class 0 1/1, class 1 1/3 -> 2/3 vs samples 2/4
    assert gzsl_accuracy(scores, labels, [0, 1])["seen"] == pytest.approx(2 / 3)
    assert gzsl_accuracy(scores, labels, [0, 1], per_class=False)["seen"] == pytest.approx(0.5)


def test_harmonic_mean_and_mean_std():
    assert harmonic_mean(0.0, 0.0) == 0.0 and harmonic_mean(0.5, 0.5) == 0.5
    mean, std = mean_std([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and std == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert mean_std([1.0, 2.0], ddof=0) == (1.5, 0.5)
    assert math.isnan(mean_std([0.3])[1])
    with pytest.raises(ValueError, match="no values"):
        mean_std([])


def test_bad_shapes_name_the_shape():
    with pytest.raises(ValueError, match=r"\(3,\)"):
        top1_accuracy(SCORES[:3], LABELS)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        top1_accuracy(SCORES, np.array([0, 1, 2, 3, 4]))


# ---------------------------------------------------------------------------------- tables
HEADER = TableHeader(protocol="UCF101 TruZe 50/51", backbone="CLIP ViT-B/16", frames=8,
                     splits=[0, 1, 2], seeds=[0])
RESULTS = ([{"method": "ResT", "split": s, "seed": 0, "metrics": {"top1": t, "harmonic": h}}
            for s, (t, h) in enumerate([(0.70, 0.50), (0.72, 0.52), (0.74, 0.48)])]
           + [{"method": "Action_CLIP", "split": s, "seed": 0, "metrics": {"top1": t, "harmonic": h}}
              for s, (t, h) in enumerate([(0.60, 0.60), (0.62, 0.58), (0.64, 0.59)])])


def test_summary_is_mean_and_std_over_splits():
    frame = summarize(RESULTS)
    assert list(frame.index) == ["ResT", "Action_CLIP"] and frame.loc["ResT", "runs"] == 3
    assert frame.loc["ResT", "top1_mean"] == pytest.approx(0.72)
    assert frame.loc["ResT", "top1_std"] == pytest.approx(0.02)
    assert frame.loc["Action_CLIP", "harmonic_mean"] == pytest.approx(0.59)
    with pytest.raises(ValueError, match="duplicate"):
        summarize(RESULTS + RESULTS[:1])


def test_markdown_has_header_line_and_bold_best():
    md = to_markdown(RESULTS, HEADER, column_names={"top1": "Top-1", "harmonic": "H"})
    lines = md.splitlines()
    assert lines[0] == ("*Protocol: UCF101 TruZe 50/51; Backbone: CLIP ViT-B/16; Frames: 8; "
                        "Splits: 0, 1, 2; Seeds: 0*")
    assert lines[2] == "| Method | Top-1 | H |"
    assert lines[4] == "| ResT | **72.0 ± 2.0** | 50.0 ± 2.0 |"
    assert lines[5] == "| Action_CLIP | 62.0 ± 2.0 | **59.0 ± 1.0** |"


def test_latex_has_caption_escaping_and_bold_best():
    tex = to_latex(RESULTS, HEADER, lower_is_better=["harmonic"], label="tab:ucf")
    assert tex.startswith("% Protocol: UCF101 TruZe 50/51;")
    assert r"\caption{Protocol: UCF101 TruZe 50/51; Backbone: CLIP ViT-B/16;" in tex
    assert r"ResT & \textbf{72.0 $\pm$ 2.0} & \textbf{50.0 $\pm$ 2.0} \\" in tex  # lower is better
    assert r"Action\_CLIP & 62.0 $\pm$ 2.0 & 59.0 $\pm$ 1.0 \\" in tex
    assert r"\toprule" in tex and r"\label{tab:ucf}" in tex


def test_tables_require_a_complete_header(tmp_path):
    with pytest.raises(TypeError, match="TableHeader"):
        to_markdown(RESULTS, None)
    with pytest.raises(ValueError, match="'backbone'"):
        TableHeader(protocol="x", backbone="", frames=8, splits=3, seeds=0)
    paths = save_tables(RESULTS, tmp_path, "ucf", dict(protocol="p", backbone="b", frames=8, splits=3, seeds=0))
    assert paths["md"].read_text().startswith("*Protocol: p;")
    assert paths["csv"].read_text().splitlines()[0] == "# Protocol: p; Backbone: b; Frames: 8; Splits: 3; Seeds: 0"
    assert paths["tex"].is_file()


def test_paired_comparison_by_hand():
    from zsar.evaluation.metrics import paired_comparison

    b = np.arange(10.0)
    lower = paired_comparison(b - np.linspace(0.1, 1.0, 10), b)  # lower on every split
    # exact signed-rank test, all 10 differences of one sign: two-sided p = 2 / 2**10
    assert lower["wilcoxon_p"] == pytest.approx(2 / 2 ** 10)
    assert lower["verdict"] == "lower" and (lower["n"], lower["n_lower"], lower["n_higher"]) == (10, 10, 0)
    assert lower["delta_mean"] == pytest.approx(-0.55) and lower["delta_std"] == pytest.approx(np.linspace(0.1, 1, 10).std(ddof=1))
    assert paired_comparison(b + 1.0 + np.arange(10) / 10, b)["verdict"] == "higher"
    # d = -1, +2, -3, +4: W- = 1 + 3 = 4; of the 16 sign patterns 7 have a rank sum <= 4, p = 2 * 7/16
    mixed = paired_comparison([0.0, 2.0, 0.0, 4.0], [1.0, 0.0, 3.0, 0.0])
    assert mixed["wilcoxon_p"] == pytest.approx(0.875) and mixed["verdict"] == "no clear difference"
    # four splits can never reach p < 0.05: the smallest exact two-sided p is 2 / 2**4
    assert paired_comparison([0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 3.0, 4.0])["wilcoxon_p"] == pytest.approx(0.125)
    same = paired_comparison([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(same["wilcoxon_p"]) and same["verdict"] == "no clear difference" and same["delta_mean"] == 0
    with pytest.raises(ValueError, match="equal-length"):
        paired_comparison([1.0, 2.0], [1.0])

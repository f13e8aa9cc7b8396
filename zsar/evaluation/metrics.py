"""Classification metrics for zero-shot and generalised zero-shot action recognition.

All functions take scores ``(N, C)`` (logits or similarities; higher = more likely) and integer
labels ``(N,)`` as numpy arrays or torch tensors, and return Python floats in ``[0, 1]``.

GZSL follows Xian et al. (2018): seen accuracy ``S`` is the per-class (mean class) accuracy
over test videos of seen classes, unseen accuracy ``U`` the same over unseen classes, both
predicted over the union of all classes, and ``H = 2 S U / (S + U)``. Calibrated stacking
(Chao et al., 2016) subtracts ``gamma`` from the seen classes' scores before the arg-max to
counter the bias towards classes seen in training.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def _as_numpy(x) -> np.ndarray:
    """Tensors (any device, any dtype incl. bf16) and array-likes to numpy."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = _as_numpy(scores), _as_numpy(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, C), got shape {scores.shape}")
    if labels.shape != (scores.shape[0],):
        raise ValueError(f"labels must be (N,) = ({scores.shape[0]},), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got [{labels.min()}, {labels.max()}]")
    return scores, labels


def topk_correct(scores, labels, k: int) -> np.ndarray:
    """``(N,)`` bool: is the true class among the ``k`` highest scores?"""
    scores, labels = _check(scores, labels)
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k={k} must lie in [1, C={scores.shape[1]}]")
    # stable sort of -scores: ties go to the lower class id, exactly as argmax breaks them
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(axis=1)


def topk_accuracy(scores, labels, k: int = 1) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Ties are broken towards the lower class id, as ``argmax`` does, so top-1 equals the
    accuracy of ``scores.argmax(1)``.
    """
    correct = topk_correct(scores, labels, k)
    return float(correct.mean()) if correct.size else float("nan")


def top1_accuracy(scores, labels) -> float:
    """Top-1 accuracy, see :func:`topk_accuracy`."""
    return topk_accuracy(scores, labels, 1)


def per_class_accuracy(predictions, labels, classes: Iterable[int]) -> dict[int, float]:
    """Top-1 accuracy of each class in ``classes`` that has test samples.

    Args:
        predictions: ``(N,)`` predicted class ids.
        labels: ``(N,)`` true class ids.
        classes: the classes to report (those without samples are skipped).
    """
    predictions, labels = _as_numpy(predictions), _as_numpy(labels)
    out = {}
    for c in classes:
        mask = labels == c
        if mask.any():
            out[int(c)] = float((predictions[mask] == c).mean())
    return out


def mean_class_accuracy(scores, labels) -> float:
    """Top-1 accuracy averaged over the classes present in ``labels`` (balanced accuracy)."""
    scores, labels = _check(scores, labels)
    accs = per_class_accuracy(scores.argmax(axis=1), labels, np.unique(labels))
    return float(np.mean(list(accs.values()))) if accs else float("nan")


def accuracy_report(scores, labels, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """``{"top1": ..., "top5": ..., "mean_class_acc": ...}`` (``k`` larger than C is skipped)."""
    scores, labels = _check(scores, labels)
    report = {f"top{k}": topk_accuracy(scores, labels, k) for k in ks if k <= scores.shape[1]}
    report["mean_class_acc"] = mean_class_accuracy(scores, labels)
    return report


def confusion_matrix(predictions, labels, num_classes: int) -> np.ndarray:
    """``(C, C)`` int64 counts: row = true class, column = predicted class (scikit-learn's)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    predictions, labels = _as_numpy(predictions).astype(np.int64), _as_numpy(labels).astype(np.int64)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    for name, v in (("predictions", predictions), ("labels", labels)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got [{v.min()}, {v.max()}]")
    return sk_confusion_matrix(labels, predictions, labels=np.arange(num_classes)).astype(np.int64)


def harmonic_mean(seen: float, unseen: float) -> float:
    """``2 S U / (S + U)``; 0 when both are 0."""
    return 0.0 if seen + unseen == 0 else 2.0 * seen * unseen / (seen + unseen)


def gzsl_accuracy(scores, labels, seen_classes: Iterable[int], calibration: float = 0.0,
                  per_class: bool = True) -> dict[str, float]:
    """Generalised zero-shot accuracy: seen, unseen and their harmonic mean.

    Args:
        scores: ``(N, C)`` scores over **all** classes (seen and unseen).
        labels: ``(N,)`` true class ids of test videos from both seen and unseen classes.
        seen_classes: ids of the classes used in training; the rest are unseen.
        calibration: calibrated stacking ``gamma``, subtracted from seen classes' scores.
        per_class: average accuracy per class (the standard) instead of per sample.

    Returns:
        ``{"seen": S, "unseen": U, "harmonic": H}``.

    Raises:
        ValueError: a seen class id is out of range, or the test set lacks seen or unseen samples.
    """
    scores, labels = _check(scores, labels)
    num_classes = scores.shape[1]
    seen = np.zeros(num_classes, dtype=bool)
    seen_ids = np.asarray(list(seen_classes), dtype=np.int64)
    if seen_ids.size and (seen_ids.min() < 0 or seen_ids.max() >= num_classes):
        raise ValueError(f"seen class ids must lie in [0, {num_classes}), got {sorted(set(seen_ids.tolist()))}")
    seen[seen_ids] = True
    predictions = (scores - calibration * seen[None, :]).argmax(axis=1)
    result = {}
    for name, mask in (("seen", seen[labels]), ("unseen", ~seen[labels])):
        if not mask.any():
            raise ValueError(f"the test labels hold no {name}-class samples")
        if per_class:
            accs = per_class_accuracy(predictions[mask], labels[mask], np.unique(labels[mask]))
            result[name] = float(np.mean(list(accs.values())))
        else:
            result[name] = float((predictions[mask] == labels[mask]).mean())
    result["harmonic"] = harmonic_mean(result["seen"], result["unseen"])
    return result


def mean_std(values: Iterable[float], ddof: int = 1) -> tuple[float, float]:
    """Mean and standard deviation (``ddof=1``: sample std, as over splits) of ``values``.

    The std of a single value is ``nan`` with ``ddof=1``; NaN values are not skipped.

    Raises:
        ValueError: ``values`` is empty.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std of no values")
    std = float(arr.std(ddof=ddof)) if arr.size > ddof else float("nan")
    return float(arr.mean()), std


def paired_comparison(a: Sequence[float], b: Sequence[float], alpha: float = 0.05) -> dict:
    """Paired comparison of two methods measured on the same splits: is ``a`` lower than ``b``?

    Per-split differences ``d = a - b``; the two-sided Wilcoxon signed-rank test (exact for small
    ``n``; zero differences dropped) gives ``p``. With fewer than 6 non-zero differences no
    two-sided p below 0.05 is possible, so a smoke run can only say ``"no clear difference"``.

    Args:
        a, b: ``(n,)`` one value per split, same split order.
        alpha: significance level of the verdict.

    Returns:
        ``{"delta_mean", "delta_std", "n", "n_lower", "n_higher", "wilcoxon_p", "verdict"}`` with
        ``verdict`` one of ``"lower"``, ``"higher"`` (``p < alpha``, by the sign of the mean
        difference) or ``"no clear difference"``; ``wilcoxon_p`` is ``nan`` when every difference is 0.

    Raises:
        ValueError: ``a`` and ``b`` differ in length or are empty.
    """
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired values must be two equal-length 1-D sequences, got {a.shape} and {b.shape}")
    d = a - b
    p = float(wilcoxon(d[d != 0]).pvalue) if np.any(d != 0) else float("nan")
    mean, std = mean_std(d)
    verdict = "no clear difference" if not p < alpha else ("lower" if mean < 0 else "higher")
    return {"delta_mean": mean, "delta_std": std, "n": int(d.size), "n_lower": int((d < 0).sum()),
            "n_higher": int((d > 0).sum()), "wilcoxon_p": p, "verdict": verdict}


def temporal_pair_accuracy(scores: np.ndarray, labels: np.ndarray,
                           pairs: Sequence[tuple[int, int]]) -> tuple[float, int]:
    """2-way accuracy over the videos of each pair's two classes, between those two columns.

    Returns:
        ``(accuracy, number of videos)``; ``(nan, 0)`` without pairs.
    """
    correct, total = 0, 0
    for a, b in pairs:
        for cls, other in ((a, b), (b, a)):
            rows = labels == cls
            # ties go to the lower index, as argmax does
            wins = scores[rows, cls] > scores[rows, other] if cls > other else scores[rows, cls] >= scores[rows, other]
            correct, total = correct + int(wins.sum()), total + int(rows.sum())
    return (correct / total if total else math.nan), total

"""Linear-probe evaluation of frozen video embeddings (any method's ``video_embeddings``).

A multinomial logistic regression (scikit-learn's ``LogisticRegression``, L-BFGS) on standardised
features, fitted on labelled training embeddings and scored on test embeddings. This measures
how linearly separable a representation is: it is **not** zero-shot (the probe sees labels of
the classes it is tested on), so report it beside, never instead of, zero-shot accuracy::

    from zsar.experiments.linear_probe import linear_probe
    report = linear_probe(method.video_embeddings(train), y_train, method.video_embeddings(test), y_test)
    report["top1"], report["mean_class_acc"]
"""

from __future__ import annotations

import numpy as np


def _check_split(features, labels, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(N, D)`` float64 features and ``(N,)`` int64 labels, or a ``ValueError`` naming ``what``."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{what}_features must be a non-empty (N, D) array, got shape {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"{what}_labels must have shape ({x.shape[0]},), got {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{what}_labels must be integers, got dtype {y.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}_features hold {int((~np.isfinite(x)).sum())} non-finite values")
    return x, y.astype(np.int64)


def linear_probe(train_features, train_labels, test_features, test_labels, C: float = 1.0, seed: int = 0,
                 max_iter: int = 1000) -> dict[str, float]:
    """Fit a standardised logistic-regression probe on train embeddings; score the test ones.

    Args:
        train_features: ``(N, D)`` training embeddings.
        train_labels: ``(N,)`` integer class ids (at least two classes).
        test_features: ``(M, D)`` test embeddings.
        test_labels: ``(M,)`` integer class ids, all among ``train_labels``.
        C: inverse L2 regularisation strength of ``LogisticRegression``.
        seed: ``random_state`` of the solver (L-BFGS is deterministic; kept for other solvers).
        max_iter: solver iterations.

    Returns:
        ``{"top1": ..., "mean_class_acc": ...}``: test accuracy, and the accuracy averaged over
        the classes present in ``test_labels``.

    Raises:
        ValueError: bad shapes, non-finite features, ``C <= 0``, fewer than two training
            classes, or test classes the probe never saw (named in the message).
        TypeError: non-integer labels.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from zsar.evaluation.metrics import per_class_accuracy

    x_train, y_train = _check_split(train_features, train_labels, "train")
    x_test, y_test = _check_split(test_features, test_labels, "test")
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"train features have D={x_train.shape[1]}, test features D={x_test.shape[1]}")
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C!r}")
    classes = np.unique(y_train)
    if classes.size < 2:
        raise ValueError(f"a linear probe needs at least two training classes, got {classes.tolist()}")
    unknown = sorted(set(np.unique(y_test).tolist()) - set(classes.tolist()))
    if unknown:
        raise ValueError(f"test classes {unknown} have no training sample for the probe")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed))
    predictions = probe.fit(x_train, y_train).predict(x_test)
    per_class = per_class_accuracy(predictions, y_test, np.unique(y_test))
    return {"top1": float(np.mean(predictions == y_test)), "mean_class_acc": float(np.mean(list(per_class.values())))}


def linear_probe_method(method, train_dataset, test_dataset, **kwargs) -> dict[str, float]:
    """:func:`linear_probe` on a fitted method's ``video_embeddings`` of two labelled datasets.

    Args:
        method: a fitted :class:`~zsar.methods.base.ZeroShotMethod`.
        train_dataset, test_dataset: datasets whose ``label`` are the probe's classes (e.g. the
            unseen classes' train and test lists; the probe, not the method, sees these labels).
        **kwargs: ``C``, ``seed``, ``max_iter`` of :func:`linear_probe`.
    """
    from zsar.methods.base import dataset_labels

    return linear_probe(method.video_embeddings(train_dataset), dataset_labels(train_dataset),
                        method.video_embeddings(test_dataset), dataset_labels(test_dataset), **kwargs)

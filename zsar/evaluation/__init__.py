"""Evaluation: accuracy metrics (top-k, mean class, GZSL seen/unseen/harmonic) and result tables.

Tables aggregate per-split results to mean ± std per method and always carry a header line
with protocol, backbone, frames, splits and seeds (:class:`TableHeader`).
"""

from zsar.evaluation.metrics import (accuracy_report, confusion_matrix, gzsl_accuracy, harmonic_mean,
                                     mean_class_accuracy, mean_std, paired_comparison, per_class_accuracy,
                                     top1_accuracy, topk_accuracy, topk_correct)
from zsar.evaluation.tables import (TableHeader, format_cells, latex_escape, save_tables, summarize,
                                    to_latex, to_markdown)

__all__ = [
    "TableHeader", "accuracy_report", "confusion_matrix", "format_cells", "gzsl_accuracy",
    "harmonic_mean", "latex_escape", "mean_class_accuracy", "mean_std", "paired_comparison", "per_class_accuracy",
    "save_tables", "summarize", "to_latex", "to_markdown", "top1_accuracy", "topk_accuracy",
    "topk_correct",
]

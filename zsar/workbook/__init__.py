"""The workbook: run the notebooks in order, sweep their parameters, index their figures.

* :mod:`zsar.workbook.runner` — ``python -m zsar.workbook``: every notebook through papermill.
* :mod:`zsar.workbook.notebook` — what a notebook cell calls: parameter checks, run folders, metrics.
* :mod:`zsar.workbook.sweep` — ``python -m zsar.workbook.sweep``: a grid of parameter points.
* :mod:`zsar.workbook.figure_index` — every figure, the notebook that made it and its parameters.
"""

from zsar.workbook.runner import list_notebooks, main, parse_value, resolve_path_parameters, run_notebook

__all__ = ["list_notebooks", "main", "parse_value", "resolve_path_parameters", "run_notebook"]

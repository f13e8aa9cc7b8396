"""Reports: figures and paper tables drawn from what the experiments recorded.

* :mod:`zsar.report.plotting` — the house style, saving figures, heatmaps and frame strips.
* :mod:`zsar.report.results_plots` — bars, curves and error bars of result tables.
* :mod:`zsar.report.embedding_plots` — embedding maps, confusion and hubness plots.
* :mod:`zsar.report.paper` — paper tables (Markdown and booktabs LaTeX) from run folders.
* :mod:`zsar.report.paper_figures` — the paper's summary figures.
"""

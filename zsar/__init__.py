"""zsar — a research workbook for zero-shot video action recognition."""

__version__ = "0.1.0"

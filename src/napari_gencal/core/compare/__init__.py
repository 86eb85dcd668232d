"""Data vs model: descriptor tables with absolute and relative errors, figures, and a report.

* :func:`compare` turns two :func:`~napari_gencal.core.descriptors.describe` dictionaries into a
  :class:`Comparison` (rows in the style of the paper's Tables 1–2) that renders as text
  (``str``), CSV, JSON and Markdown.
* :func:`compare_images` describes a data image and a model (generated first) or a label volume,
  and keeps what the figures need (chord length distributions, TPPF curves, one slice of each).
* Figures are :class:`matplotlib.figure.Figure` objects (no pyplot): chord-length CDFs per phase
  and axis (:func:`chord_cdf_figure`), TPPF curves (:func:`tppf_figure`), slices side by side
  (:func:`slices_figure`).
* :func:`write_report` writes ``report.md`` with the table, the PNG figures and the descriptors as
  JSON and CSV into a new folder, atomically (a temporary folder renamed at the end) and never over
  an existing one.

Relative error = (model − data) / |data| (signed; the tables print its magnitude in %).
"""

from .figures import chord_cdf_figure, slices_figure, tppf_figure
from .images import compare_images
from .report import write_report
from .table import Comparison, compare

__all__ = [
    "Comparison",
    "compare",
    "compare_images",
    "chord_cdf_figure",
    "tppf_figure",
    "slices_figure",
    "write_report",
]

"""Virtual materials testing: vary a calibrated twin's interpretable knobs, generate structures,
measure descriptors and effective properties, relate them (method.md §7; issue 11).

* :mod:`.knobs` — named, validated knobs (target volume fractions, length scales, b, σ, a, …).
* :mod:`.design` — grids, one-at-a-time, Latin hypercube, Sobol', Morris; seeds per realization.
* :mod:`.run` — points × realizations on a Dask cluster into a resumable store; the table.
* :mod:`.relations` — Stenzel-type and user relations, sensitivity indices, figures.
* :mod:`.report` — the Markdown report of a sweep.

Importing this package is cheap; Dask, SALib and pandas are imported when used.
"""

from .design import Design, grid, latin_hypercube, make_design, morris, one_at_a_time, sobol
from .knobs import Knob, apply_knobs, get_knob, knob_value, knobs_of, set_fractions
from .run import SweepSpec, evaluate, load_table, run_sweep, summarize

__all__ = [
    "Design",
    "Knob",
    "SweepSpec",
    "apply_knobs",
    "evaluate",
    "get_knob",
    "grid",
    "knob_value",
    "knobs_of",
    "latin_hypercube",
    "load_table",
    "make_design",
    "morris",
    "one_at_a_time",
    "run_sweep",
    "set_fractions",
    "sobol",
    "summarize",
]

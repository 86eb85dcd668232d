"""Virtual materials testing: vary a calibrated twin's interpretable knobs, generate structures,
measure descriptors and effective properties, relate them (method.md §7; issue 11).

* :mod:`.knobs` — named, validated knobs (target volume fractions, length scales, b, σ, a, …).
"""

from .knobs import Knob, apply_knobs, get_knob, knob_value, knobs_of, set_fractions

__all__ = ["Knob", "apply_knobs", "get_knob", "knob_value", "knobs_of", "set_fractions"]

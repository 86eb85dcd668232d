"""Compute core: torch + numpy only. No Qt, no napari.

Modules, in data-flow order: :mod:`.phases` and :mod:`.io` (labels → phase indicators),
:mod:`.tppf` and :mod:`.descriptors` (statistics), :mod:`.fields`, :mod:`.covariance`,
:mod:`.model`, :mod:`.generate` (the stochastic model and its realizations), :mod:`.calibrate`
(fitting the model to data), :mod:`.compare` (data vs model).
"""

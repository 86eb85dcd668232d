"""Small bundled three-phase samples, usable without napari (the CLI demo loads them too).

The crops live in ``napari_gencal/_data`` (see the README there for sources and licences):

* ``"sofc_2d"`` — 256×256 section of a solid-oxide-fuel-cell anode, labels 0/1/2 (MIT, SuperRes);
* ``"cathode_3d"`` — 128³ crop of a Li-ion cathode volume, labels 0 = pore, 85 = NMC,
  170 = binder/carbon (MIT, TauFactor).
"""

from __future__ import annotations

from importlib.resources import files

import numpy as np

from .core.io import LabelImage
from .core.phases import PhaseMap

__all__ = ["SAMPLES", "load_sample", "sample_names"]

# name -> (file in _data, phase labels, phase names, description, source note)
SAMPLES: dict[str, dict] = {
    "sofc_2d": {
        "file": "sofc_2d.npz",
        "labels": (0, 1, 2),
        "names": ("phase 0", "phase 1", "phase 2"),
        "description": "Three-phase SOFC anode section (2D, 256×256)",
        "source": "amirDahari1/SuperRes@a0b19259:data/SOFC_hr_input.tif [0, :256, :256] (MIT)",
    },
    "cathode_3d": {
        "file": "cathode_3d.npz",
        "labels": (0, 85, 170),
        "names": ("pore", "NMC", "binder"),
        "description": "Three-phase Li-ion cathode volume (3D, 128³)",
        "source": (
            "tldr-group/taufactor@fb645485:docs/notebooks/electrode.tiff [:128, :128, :128] (MIT)"
        ),
    },
}


def sample_names() -> list[str]:
    """Names accepted by :func:`load_sample`."""
    return list(SAMPLES)


def load_sample(name: str) -> LabelImage:
    """Load a bundled sample as a :class:`~napari_gencal.core.io.LabelImage`.

    Parameters
    ----------
    name : {"sofc_2d", "cathode_3d"}
        Which sample.

    Returns
    -------
    LabelImage
        Label values as in the source, voxel size ``None`` (the sources give none), the source
        note in ``source`` and ``metadata["description"]``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLES)}")
    spec = SAMPLES[name]
    with (files("napari_gencal") / "_data" / spec["file"]).open("rb") as fh:
        with np.load(fh, allow_pickle=False) as npz:
            data = np.array(npz["labels"])
    pm = PhaseMap(spec["labels"], spec["names"])
    return LabelImage(
        data=data,
        phase_map=pm,
        voxel_size=None,
        unit=None,
        source=spec["source"],
        metadata={"description": spec["description"], "sample": name},
    )

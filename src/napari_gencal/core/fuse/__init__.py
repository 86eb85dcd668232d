"""Fusion with a low-resolution 3D scan: realizations of a calibrated model conditioned on it.

:mod:`.scan` — the scan's label mapping, scale factor and block statistics (NumPy);
:mod:`.conditional` — the conditional sampler (torch); :mod:`.chunked` — large volumes in chunks
with halos, optionally on a Dask cluster.
"""

from .chunked import default_halo, fuse_chunked, plan_chunks
from .conditional import (
    FusionResult,
    FusionSettings,
    check_memory,
    fuse,
    fuse_draws,
    fusion_memory,
)
from .scan import (
    ScanMapping,
    block_fractions,
    downsample_majority,
    parse_mapping,
    prepare_scan,
    resolve_scale,
    scan_agreement,
    upsample_nearest,
)

__all__ = [
    "FusionResult",
    "FusionSettings",
    "ScanMapping",
    "block_fractions",
    "check_memory",
    "default_halo",
    "fuse_chunked",
    "fusion_memory",
    "plan_chunks",
    "prepare_scan",
    "downsample_majority",
    "fuse",
    "fuse_draws",
    "parse_mapping",
    "resolve_scale",
    "scan_agreement",
    "upsample_nearest",
]

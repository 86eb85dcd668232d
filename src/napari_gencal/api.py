"""The Python API: the few functions a notebook or script user calls.

Everything here forwards to the compute core (:mod:`napari_gencal.core`); the CLI and the napari
widgets call the same core functions. Importing this module is cheap: torch is imported on first
use.

Examples
--------
>>> from napari_gencal import api
>>> data = api.read_labels("image.tif", phases="0,128,255")          # doctest: +SKIP
>>> model = api.calibrate(data, max_epochs=50, seed=1)              # doctest: +SKIP
>>> model.save("model.gencal.json")                                 # doctest: +SKIP
>>> volume = api.generate(model, (128, 128, 128), seed=1)           # doctest: +SKIP
>>> print(api.compare(data, volume))                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.io import LabelImage, read_labels
from .core.phases import PhaseMap, infer_phase_map

if TYPE_CHECKING:
    from .core.calibrate import CalibrationConfig, CalibrationPipeline
    from .core.model import ExcursionModel
    from .core.tppf import TPPFResult

__all__ = [
    "read_labels",
    "load_model",
    "tppf",
    "describe",
    "calibration",
    "calibrate",
    "generate",
    "generate_sections",
    "model_at_voxel_size",
    "export",
    "compare",
    "sweep",
    "fuse",
    "cell",
    "LabelImage",
    "PhaseMap",
]

ImageLike = LabelImage | np.ndarray | str | os.PathLike


def _as_label_image(
    image: ImageLike, phases: Any = None, voxel_size: Any = None, unit: str | None = None
) -> LabelImage:
    """Accept a path, an array or a LabelImage; return a checked LabelImage.

    ``voxel_size`` (a number, ``(dz, dy, dx)``, or ``"0.1,0.02,0.02"`` / ``"0.4um"``) overrides
    the image's own; ``unit`` names its unit when the value does not.
    """
    if isinstance(image, str | os.PathLike):
        return read_labels(image, phases=phases, voxel_size=voxel_size, unit=unit)
    if voxel_size is not None or unit is not None:
        from .core.units import normalize_unit, parse_voxel_size

        base = image if isinstance(image, LabelImage) else _as_label_image(image, phases)
        vs, u = parse_voxel_size(voxel_size, base.data.ndim, unit)
        if vs is None:  # only a unit: it names the unit of the image's own voxel size
            vs, u = base.voxel_size, normalize_unit(unit)
        return LabelImage(base.data, infer_phase_map(base.data, phases) if phases is not None
                          else base.phase_map, vs, u if vs is not None else None, base.source,
                          dict(base.metadata))  # fmt: skip
    if isinstance(image, LabelImage):
        if phases is not None:
            image = LabelImage(
                image.data,
                infer_phase_map(image.data, phases),
                image.voxel_size,
                image.unit,
                image.source,
                dict(image.metadata),
            )
        return image
    arr = np.asarray(image)
    return LabelImage(arr, infer_phase_map(arr, phases), None, None, "<array>")


def load_model(path: str | os.PathLike) -> ExcursionModel:
    """Load a model file (``*.gencal.json``) written by :meth:`ExcursionModel.save`."""
    from .core.model import ExcursionModel

    return ExcursionModel.load(path)


def tppf(
    image: ImageLike,
    phases: str | Sequence[int] | None = None,
    axis: str | int | None = None,
    r_max: int | None = None,
    bandwidth: float = 1.0,
    device: str = "auto",
) -> TPPFResult:
    """Two-point coverage probability functions of a segmented image or stack.

    Parameters
    ----------
    image : LabelImage, ndarray or path
    phases : str or sequence of int, optional
        Label value of each phase in order (``"0,85,170"``).
    axis : {"z", "y", "x"} or None
        For a 3D stack: average the curves of the 2D sections normal to ``axis``; ``None`` → 3D.
    r_max : int, optional
        Largest distance; default by the rule of method.md §4.
    bandwidth : float
        Gaussian kernel-regression bandwidth in voxels.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    TPPFResult
        ``.r``, ``.curves`` (k, k, R), ``.to_csv(path)``, ``.figure()``.
    """
    from .core.tppf import tppf_of_labels

    img = _as_label_image(image, phases)
    return tppf_of_labels(img, axis=axis, r_max=r_max, bandwidth=bandwidth, device=device)


def describe(
    image: ImageLike,
    phases: str | Sequence[int] | None = None,
    voxel_size: float | Sequence[float] | None = None,
    directions: Iterable[str] = ("z", "y", "x"),
    **options: Any,
) -> dict[str, Any]:
    """Structural descriptors per phase (volume fraction, S_V, chords, tortuosity, constrictivity).

    Returns the dictionary with stable keys documented in ``docs/descriptors.md``; further keyword
    arguments go to :func:`napari_gencal.core.descriptors.describe`.
    """
    from .core.descriptors import describe as _describe

    img = _as_label_image(image, phases, voxel_size)
    return _describe(img, directions=tuple(directions), **options)


def _config(config: CalibrationConfig | str | None, settings: dict[str, Any]) -> CalibrationConfig:
    from .core.calibrate import CalibrationConfig

    if isinstance(config, CalibrationConfig):
        return config.replace(**settings) if settings else config
    return CalibrationConfig.preset(config or "minutes", **settings)


def calibration(
    image: ImageLike,
    phases: str | Sequence[int] | None = None,
    axis: str | int = "auto",
    config: CalibrationConfig | str | None = None,
    *,
    voxel_size: str | float | Sequence[float] | None = None,
    unit: str | None = None,
    continue_from: ExcursionModel | str | os.PathLike | None = None,
    remedy: str | None = None,
    **settings: Any,
) -> CalibrationPipeline:
    """A calibration to drive yourself: iterate ``.run()`` for progress records.

    The same pipeline as :func:`calibrate` and the CLI (settings from the data, phase order,
    rescaling, anisotropy, verdict). ``.notes`` says what was chosen; after the run ``.result`` is
    the final model and ``.verdict`` the check. Stopping the iteration (``break``, or closing the
    generator) cancels the calibration and ``.best_model`` keeps the best model found so far.

    Parameters
    ----------
    image : LabelImage, ndarray or path
        2D image, or a 3D stack used as sections normal to ``axis``.
    phases : str or sequence of int, optional
    axis : {"auto", "z", "y", "x"}
        For a 3D stack: the axis normal to the sections used (``"auto"``: z, unless the x–y
        planes are anisotropic and another axis's planes are not).
    config : CalibrationConfig or {"minutes", "default", "paper"}, optional
    voxel_size, unit : optional
        The image's voxel size (``"0.4um"``, ``"0.1,0.02,0.02"``, ``(dz, dy, dx)``), overriding
        the file's; it reaches the calibration through the LabelImage.
    continue_from : ExcursionModel or path, optional
        Improve this model (calibrated on the same data): the remedy its verdict names (a longer
        run, the other phase order, per-field anisotropy, the plurigaussian rule) is applied from
        where it stopped, and ``.result`` is the better of the two models.
    remedy : str, optional
        With ``continue_from``: ``"longer"``, ``"other_order"``, ``"per_field_anisotropy"``,
        ``"plurigaussian"`` or ``"connectivity"`` instead of the verdict's first remedy.
    **settings
        Overrides of :class:`~napari_gencal.core.calibrate.CalibrationConfig` fields
        (``max_epochs=``, ``time_limit=``, ``algorithm=``, ``model=``, ``seed=``, ``device=`` …).
    """
    from .core.calibrate import CalibrationPipeline, prepare_data

    data = prepare_data(_as_label_image(image, phases, voxel_size, unit), None, axis)
    prev = load_model(continue_from) if isinstance(continue_from, str | os.PathLike) else (
        continue_from
    )  # fmt: skip
    return CalibrationPipeline(data, _config(config, settings), continue_from=prev, remedy=remedy)


def calibrate(
    image: ImageLike,
    phases: str | Sequence[int] | None = None,
    axis: str | int = "auto",
    config: CalibrationConfig | str | None = None,
    progress: Callable[[Any], Any] | None = None,
    *,
    voxel_size: str | float | Sequence[float] | None = None,
    unit: str | None = None,
    **settings: Any,
) -> ExcursionModel:
    """Calibrate the 3D excursion-set model on a segmented image and return it.

    Parameters are as for :func:`calibration`; ``progress`` is called with every progress record
    (returning ``False`` cancels and returns the best model so far).

    Returns
    -------
    ExcursionModel
        Save it with ``model.save("name.gencal.json")``.
    """
    from .core.calibrate import calibrate as _calibrate

    img = _as_label_image(image, phases, voxel_size, unit)
    return _calibrate(img, None, axis, _config(config, settings), progress)


def generate(
    model: ExcursionModel | str | os.PathLike,
    shape: Sequence[int],
    seed: int = 0,
    device: str = "auto",
    periodic: bool = False,
    chunks: int | Sequence[int] | str | None = "auto",
    voxel_size: str | float | Sequence[float] | None = None,
    unit: str | None = None,
) -> np.ndarray:
    """Generate a hard-threshold label volume (or 2D section) from a model.

    Same model, seed and device → the identical array. ``chunks`` generates block by block with
    bounded memory and gives the same result voxel for voxel; ``"auto"`` (default) does so only
    when the whole volume would need more than 2 GiB of working memory, None never.

    ``voxel_size`` (one value: cubic voxels; ``"0.25um"``; ``(dz, dy, dx)``) generates the twin
    at that spacing, exactly, through the model's length scale
    (:func:`~napari_gencal.core.units.model_at_voxel_size`); default: the model's own voxels.
    ``unit`` names the unit when the value does not (default: the model's).
    """
    from .core.generate import generate as _generate

    m = load_model(model) if isinstance(model, str | os.PathLike) else model
    if voxel_size is not None:
        m = model_at_voxel_size(m, voxel_size, unit)
    return _generate(m, shape, seed=seed, device=device, periodic=periodic, chunks=chunks)


def model_at_voxel_size(
    model: ExcursionModel | str | os.PathLike,
    voxel_size: str | float | Sequence[float],
    unit: str | None = None,
) -> ExcursionModel:
    """The model on voxels of ``voxel_size`` (``"0.25um"``, a number, or ``(dz, dy, dx)``):
    generating it gives the twin at that spacing; the model itself when nothing changes."""
    from .core.units import model_at_voxel_size as _at
    from .core.units import parse_voxel_size

    m = load_model(model) if isinstance(model, str | os.PathLike) else model
    vs, u = parse_voxel_size(voxel_size, 3, unit)
    return _at(m, vs, u)  # type: ignore[arg-type]


def generate_sections(
    model: ExcursionModel | str | os.PathLike,
    n: int,
    size: int,
    seed: int = 0,
    device: str = "auto",
) -> np.ndarray:
    """``n`` independent planar sections ``(n, size, size)`` of the 3D model, at 2D cost."""
    from .core.generate import generate_sections as _sections

    m = load_model(model) if isinstance(model, str | os.PathLike) else model
    return _sections(m, n, size, seed=seed, device=device)


def compare(
    data: ImageLike,
    model_or_volume: ExcursionModel | ImageLike,
    phases: str | Sequence[int] | None = None,
    **options: Any,
) -> Any:
    """Data vs model descriptors with absolute and relative errors (paper Tables 1–2 style).

    ``model_or_volume`` is a generated label array/volume, a path to one, a model, or a model file
    (then realizations are generated first). Returns a
    :class:`~napari_gencal.core.compare.Comparison` (``str()``, ``to_csv``, ``to_json``,
    ``to_markdown``).
    """
    from .core.compare import compare_images

    d = _as_label_image(data, phases)
    other: Any = model_or_volume
    if isinstance(other, str | os.PathLike) and str(other).endswith(".json"):
        other = load_model(other)
    elif isinstance(other, str | os.PathLike | np.ndarray):
        other = _as_label_image(other, d.phase_map)
    return compare_images(d, other, **options)


def sweep(
    model: ExcursionModel | str | os.PathLike,
    knobs: dict[str, Sequence[float]] | None = None,
    *,
    design: Any = None,
    realizations: int = 3,
    shape: int | Sequence[int] = 128,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    transport: bool = True,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    resume: bool = False,
    progress: bool | Callable[[int, int, dict], Any] = True,
    cell: dict[str, Any] | None = None,
) -> Any:
    """Virtual materials testing: vary knobs of a model, measure every realization (Dask).

    Parameters
    ----------
    model : ExcursionModel or path
        The calibrated twin.
    knobs : dict, optional
        Knob → values, for a grid (e.g. ``{"vf:85": [0.3, 0.4], "length_scale": [0.8, 1.2]}``);
        see :func:`napari_gencal.core.sweep.knobs_of` for the names.
    design : Design or dict, optional
        Instead of ``knobs``: a design (``core.sweep.sobol(...)``, or its dict form with ``kind``
        grid / oat / lhs / sobol / morris).
    realizations, shape, seed
        Realizations per point, volume shape (one edge or three), the sweep seed.
    out : path, optional
        Result folder (default: a new temporary folder); ``resume=True`` continues one.
    transport : bool
        Also TauFactor's tortuosity factor and D_eff/D_0 (slower).
    client, scheduler, n_workers
        An existing ``dask.distributed`` client, a scheduler address, or the number of workers
        of a new LocalCluster (default: the CPU count).
    progress : bool or callable
        A progress bar (tqdm, also in Jupyter) or ``progress(done, total, row)``.
    cell : dict, optional
        Also discharge every realization as a cell's positive electrode:
        :class:`~napari_gencal.core.cell.CellSettings` fields, e.g. ``{"active": 85,
        "electrolyte": 0, "conductors": [170], "voxel_size": "0.4um", "rates": [0.2, 1, 2, 3]}``
        → columns ``capacity[2C]``, ``utilisation[2C]``, ``energy[2C]``, ``cell_error`` ….

    Returns
    -------
    pandas.DataFrame
        One row per point × realization: the knobs, the seed, every descriptor per phase and
        direction, timings, ``error``. ``df.attrs["out"]`` is the result folder.
    """
    import tempfile

    from .core.sweep import SweepSpec, grid, make_design
    from .core.sweep.run import MEASURES, run_sweep

    m = load_model(model) if isinstance(model, str | os.PathLike) else model
    if design is None:
        if not knobs:
            raise ValueError("give knobs={name: [values]} or a design")
        design = grid(knobs)
    elif isinstance(design, dict):
        design = make_design(design)
    shp = (int(shape),) * 3 if np.isscalar(shape) else tuple(int(s) for s in shape)
    measures = tuple(x for x in MEASURES if transport or x != "transport")
    extra = {}
    if cell is not None:
        measures += ("cell",)
        extra["cell"] = dict(cell)
    spec = SweepSpec(m.to_dict(), design, int(realizations), shp, int(seed), measures,
                     extra=extra)  # fmt: skip
    folder = out if out is not None else tempfile.mkdtemp(prefix="gencal-sweep-")
    cb = progress if callable(progress) else None
    bar = None
    if progress is True:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(spec.tasks), desc="sweep")

            def cb(done, total, row):  # noqa: F811 - the bar's callback
                bar.n = done
                bar.refresh()
        except ImportError:  # pragma: no cover - no tqdm: no bar
            cb = None
    try:
        table = run_sweep(spec, folder, client=client, scheduler=scheduler, n_workers=n_workers,
                          resume=resume, progress=cb)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    table.attrs["out"] = str(folder)
    return table


def fuse(
    model: ExcursionModel | str | os.PathLike,
    scan: ImageLike,
    scale: int | Sequence[int] | None = None,
    mapping: str | dict[Any, Any] | None = None,
    *,
    seed: int = 0,
    draws: int = 1,
    chunks: int | Sequence[int] | None = None,
    client: Any = None,
    device: str = "auto",
    progress: Callable[[dict], Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    **settings: Any,
) -> Any:
    """A high-resolution 3D twin conditioned on a low-resolution 3D scan (the SuperRes setting).

    Parameters
    ----------
    model : ExcursionModel or path
        Calibrated at the high resolution (e.g. from 2D SEM sections).
    scan : array, path or LabelImage
        The low-resolution 3D label volume.
    scale : int or (z, y, x), optional
        Up-sampling factor; checked against (or taken from) the voxel sizes.
    mapping : str or dict, optional
        Scan label → model label(s), e.g. ``"0=0+170,1=85"`` when the scan cannot tell pore from
        binder. Default: the scan uses the model's labels.
    seed : int
        Same seed → the same draw; draws ``seed, seed + 1, …``.
    draws : int
        Number of conditional draws; with more than one the result carries the per-voxel phase
        probability (``result.probability``) and the other draws (``result.draws``).
    chunks : int or (z, y, x), optional
        Fuse in chunks of this many scan voxels with halos (bounded memory); ``client`` runs
        them on a Dask cluster.
    **settings
        :class:`~napari_gencal.core.fuse.FusionSettings` fields (``steps``, ``blur``, …).

    Returns
    -------
    FusionResult
        ``labels`` (model label values), ``agreement`` with the scan, ``history``, …
    """
    from .core.fuse import (
        FusionResult,
        FusionSettings,
        fuse_chunked,
        fuse_draws,
        prepare_scan,
        resolve_scale,
        scan_agreement,
    )
    from .core.fuse import fuse as _fuse
    from .core.phases import to_labels

    m = load_model(model) if isinstance(model, str | os.PathLike) else model
    vs = None
    if isinstance(scan, LabelImage):
        vs, arr = scan.voxel_size, np.asarray(scan.data)
    elif isinstance(scan, str | os.PathLike):
        from .core.io import read_array

        arr, meta = read_array(scan)
        vs = meta.get("voxel_size")
    else:
        arr = np.asarray(scan)
    st = FusionSettings(**settings).validate()
    if chunks is None and client is None:
        kw = dict(scale=scale, mapping=mapping, settings=st, device=device,
                  scan_voxel_size=vs, cancel=cancel)  # fmt: skip
        if int(draws) == 1:
            return _fuse(m, arr, seed=seed, progress=progress, **kw)
        results, prob = fuse_draws(m, arr, n_draws=draws, seed=seed,
                                   progress=None if progress is None else
                                   (lambda d, r: progress({**r, "draw": d + 1})), **kw)  # fmt: skip
        first = results[0]
        first.probability = prob
        first.draws = [r.labels for r in results[1:]]
        return first
    if int(draws) != 1:
        raise ValueError("draws > 1 is not combined with chunks; run one chunked fusion per seed")
    import time

    t0 = time.perf_counter()
    k = int(m.n_phases)
    labels = m.phase_map.labels if m.phase_map is not None else tuple(range(1, k + 1))
    arr, mp = prepare_scan(arr, labels, k, mapping)
    sc = resolve_scale(scale, vs, m.voxel_size)
    idx = fuse_chunked(m, arr, sc, chunks=chunks or 32, mapping=mp, seed=seed, settings=st,
                       device=device, client=client, cancel=cancel,
                       progress=None if progress is None else
                       (lambda d, n: progress({"chunk": d, "chunks": n})))  # fmt: skip
    lab = to_labels(idx, m.phase_map) if m.phase_map is not None else (idx + 1).astype(np.uint8)
    return FusionResult(
        labels=lab, indices=idx, history=[], scale=sc, seed=int(seed),
        agreement=scan_agreement(idx, mp.to_indices(arr), sc, mp, k),
        mapping=mp.to_dict(labels), settings=st.__dict__.copy(),
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


from ._api_twin import cell, export  # noqa: E402 - the doors for simulators, re-exported

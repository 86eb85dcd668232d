"""Run a sweep: points × realizations on a Dask cluster, into a resumable result store.

A sweep is a :class:`SweepSpec` — a model, a :class:`~.design.Design` of knob values, the number of
realizations per point, the volume shape, the seed and what to measure. Each (point, realization)
is one task, :func:`evaluate`: apply the knobs, generate a volume with the seed
:func:`~.design.realization_seed` gives, measure the descriptors (volume fraction, S_V, mean
chords, geodesic tortuosity, constrictivity, percolation per phase and direction) and, with
TauFactor, the tortuosity factor and D_eff/D_0. A task returns one flat row.

:func:`run_sweep` maps the missing tasks over a ``dask.distributed`` client — a
:class:`~distributed.LocalCluster` of single-threaded worker processes by default, or any
scheduler by address — and writes every finished row to the store as it arrives (one small JSON
file per task, written atomically by the client, so a row is never duplicated and a lost worker
only reschedules its task). An interrupted sweep resumes without recomputing finished rows; a task
that raises is recorded with its error and the others go on. The table (Parquet and CSV, one row
per point × realization), the per-point means with 95 % confidence intervals, the spec, versions
and seeds are written at the end.

The core starts no processes itself: the cluster is Dask's.
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .design import Design, make_design, realization_seed

__all__ = [
    "SweepSpec",
    "evaluate",
    "run_sweep",
    "summarize",
    "load_table",
    "connect",
    "memory_per_task",
    "MEASURES",
    "OPTIONAL_MEASURES",
]

#: What a realization can be measured for (``transport`` needs TauFactor).
MEASURES = (
    "volume_fraction",
    "specific_surface_area",
    "mean_chord_length",
    "geodesic_tortuosity",
    "constrictivity",
    "transport",
    "interfaces",
)
#: Measures that need settings of their own (in ``SweepSpec.extra``): ``cell`` needs
#: ``extra["cell"]``, the :class:`~napari_gencal.core.cell.CellSettings` fields as a dict.
OPTIONAL_MEASURES = ("cell",)


@dataclass
class SweepSpec:
    """Everything that decides a sweep (stored beside its results).

    Attributes
    ----------
    model : dict
        The base model as its JSON dict (``ExcursionModel.to_dict()``).
    design : Design
    realizations : int
        Realizations per point.
    shape : (int, int, int)
        Volume of each realization (voxels).
    seed : int
        Sweep seed: realization r of point p uses ``realization_seed(seed, p, r)``.
    measures : tuple of str
        Subset of :data:`MEASURES`.
    directions : tuple of str
        Directions of the directional measures.
    transport_iter_limit : int
        TauFactor iteration budget.
    device : str
        Where realizations and TauFactor run on the workers.
    """

    model: dict[str, Any]
    design: Design
    realizations: int = 3
    shape: tuple[int, int, int] = (128, 128, 128)
    seed: int = 0
    measures: tuple[str, ...] = MEASURES
    directions: tuple[str, ...] = ("z", "y", "x")
    transport_iter_limit: int = 5000
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)  # type: ignore[assignment]
        if len(self.shape) != 3 or min(self.shape) < 8:
            raise ValueError(f"shape must be three sizes ≥ 8 (z, y, x), got {self.shape}")
        if int(self.realizations) < 1:
            raise ValueError(f"realizations must be ≥ 1, got {self.realizations}")
        bad = [m for m in self.measures if m not in MEASURES + OPTIONAL_MEASURES]
        if bad:
            raise ValueError(
                f"unknown measures {bad}; choose from {', '.join(MEASURES + OPTIONAL_MEASURES)}"
            )
        if "cell" in self.measures:
            from ..cell import CellSettings

            cell = self.extra.get("cell")
            if not isinstance(cell, Mapping):
                raise ValueError(
                    "the cell measure needs its settings: cell: {active: 85, electrolyte: 0, "
                    "conductors: [170], voxel_size: 0.4um}"
                )
            CellSettings(**_cell_settings(cell)).validate()  # bad settings: refused here
        bad = [d for d in self.directions if d not in ("z", "y", "x")]
        if bad:
            raise ValueError(f"directions must be z, y or x, got {bad}")
        from .knobs import get_knob

        model = self.base_model()
        for name in self.design.knobs:
            knob = get_knob(model, name)  # unknown names: ValueError listing the valid ones
            for v in self.design.points[:, self.design.knobs.index(name)]:
                knob.check(v)  # out of domain: ValueError naming the domain

    def base_model(self):
        """The base :class:`~napari_gencal.core.model.ExcursionModel`."""
        from ..model import ExcursionModel

        return ExcursionModel.from_dict(self.model)

    @property
    def tasks(self) -> list[tuple[int, int]]:
        """Every (point, realization)."""
        return [(p, r) for p in range(self.design.n_points) for r in range(self.realizations)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "model": self.model,
            "design": self.design.to_dict(),
            "realizations": int(self.realizations),
            "shape": list(self.shape),
            "seed": int(self.seed),
            "measures": list(self.measures),
            "directions": list(self.directions),
            "transport_iter_limit": int(self.transport_iter_limit),
            "device": self.device,
            "extra": self.extra,
        }

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], base_dir: Path | None = None) -> SweepSpec:
        """A spec from its YAML/JSON form: ``model`` (a path or a model dict), ``design`` (see
        :func:`~.design.make_design`), ``realizations``, ``shape`` (one size or three), ``seed``,
        ``measures``, ``directions``, ``device``."""
        from ..model import ExcursionModel

        model = d.get("model")
        if isinstance(model, str):
            path = Path(model)
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            model = ExcursionModel.load(path).to_dict()
        elif not isinstance(model, Mapping):
            raise ValueError("a sweep spec needs model: <path of a .gencal.json file>")
        design = d.get("design")
        if isinstance(design, Mapping) and "points" in design and "knobs" in design:
            design = Design(str(design.get("kind", "grid")), tuple(design["knobs"]),
                            np.asarray(design["points"], float), None,
                            dict(design.get("options") or {}))  # fmt: skip
        elif isinstance(design, Mapping):
            design = make_design(design)
        else:
            raise ValueError("a sweep spec needs design: {kind: grid, ranges: {knob: [values]}}")
        shape = d.get("shape", 128)
        shape = (int(shape),) * 3 if np.isscalar(shape) else tuple(int(s) for s in shape)
        known = {"model", "design", "realizations", "shape", "seed", "measures", "directions",
                 "transport_iter_limit", "device", "extra", "cell"}  # fmt: skip
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sweep settings {unknown}; known: {sorted(known)}")
        extra = dict(d.get("extra") or {})
        measures = tuple(d.get("measures", MEASURES))
        if d.get("cell") is not None:  # a cell: section adds the cell measure
            extra["cell"] = dict(d["cell"])
            measures = tuple(dict.fromkeys(measures + ("cell",)))
        return cls(
            dict(model), design, int(d.get("realizations", 3)), shape, int(d.get("seed", 0)),
            measures, tuple(d.get("directions", ("z", "y", "x"))),
            int(d.get("transport_iter_limit", 5000)), str(d.get("device", "cpu")), extra,
        )  # fmt: skip


def memory_per_task(spec: SweepSpec) -> int:
    """Estimated peak bytes of one task: generation (float64 FFT buffers) plus the descriptors
    and TauFactor on the volume (≈ 60 bytes per voxel)."""
    from ..generate import working_memory

    model = spec.base_model()
    n = math.prod(spec.shape)
    return int(working_memory(model, spec.shape) + 60 * n)


def _flatten(desc: dict[str, Any], directions: Sequence[str]) -> dict[str, Any]:
    """describe() → one flat row: ``name[label]`` and ``name[label,direction]`` columns."""
    row: dict[str, Any] = {}
    keys = ("volume_fraction", "specific_surface_area", "mean_chord_length",
            "geodesic_tortuosity", "percolates", "constrictivity", "tortuosity_factor",
            "effective_diffusivity")  # fmt: skip
    for lab, p in desc["phases"].items():
        for key in keys:
            if key not in p:
                continue
            v = p[key]
            if isinstance(v, dict):
                for d in directions:
                    if d in v:
                        x = v[d]
                        row[f"{key}[{lab},{d}]"] = (
                            float(x) if isinstance(x, (int, float, np.floating)) and
                            not isinstance(x, bool) else (bool(x) if isinstance(x, bool) else
                                                          float("nan"))
                        )  # fmt: skip
            else:
                row[f"{key}[{lab}]"] = float("nan") if v is None else float(v)
    for pair, v in (desc.get("interfaces") or {}).items():
        row[f"interface_area[{pair}]"] = float(v)
    if "triple_phase_boundary" in desc:
        tpb = desc["triple_phase_boundary"]
        row["tpb_length"] = float("nan") if tpb is None else float(tpb)
    return row


def _cell_settings(cell: Mapping[str, Any]) -> dict[str, Any]:
    """CellSettings fields from a sweep's ``cell`` dict (lengths may carry units: "0.4um")."""
    from ..cell import parse_length

    out = dict(cell)
    if "conductors" in out and np.isscalar(out["conductors"]):
        out["conductors"] = (out["conductors"],)
    out["conductors"] = tuple(out.get("conductors", ()))
    if "voxel_size" in out and not isinstance(out["voxel_size"], int | float):
        out["voxel_size"] = parse_length(out["voxel_size"], "voxel size", "um")
    if out.get("thickness") is not None and not isinstance(out["thickness"], int | float):
        out["thickness"] = parse_length(out["thickness"], "thickness", "um")
    if "rates" in out and not isinstance(out["rates"], str):
        out["rates"] = tuple(float(r) for r in out["rates"])
    # a sweep skips the electrode tortuosity solve unless asked (it does not enter the cell)
    out.setdefault("electrode_tortuosity", False)
    return out


def evaluate(
    model: dict[str, Any],
    knobs: Mapping[str, float],
    seed: int,
    shape: Sequence[int],
    measures: Sequence[str] = MEASURES,
    directions: Sequence[str] = ("z", "y", "x"),
    transport_iter_limit: int = 5000,
    device: str = "cpu",
    threads: int | None = None,
    cell: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One realization of the model with ``knobs`` set, measured: a flat row (runs on workers).

    With ``"cell"`` in ``measures`` and ``cell`` settings, the realization is also discharged
    as a cell's positive electrode (``capacity[2C]``, ``energy[2C]``, … columns; a volume that
    cannot make a cell gets ``cell_error`` saying why, the other columns stay).

    Returns
    -------
    dict
        Timing columns (``t_generate``, ``t_descriptors``, ``t_transport``, ``t_cell``,
        seconds) and one column per descriptor, phase and direction
        (``effective_diffusivity[85,z]``, ``interface_area[0|85]`` …).
    """
    if threads is not None:
        import torch

        torch.set_num_threads(int(threads))
    from ..descriptors import describe
    from ..generate import generate
    from ..model import ExcursionModel
    from ..phases import to_indices
    from .knobs import apply_knobs

    m = apply_knobs(ExcursionModel.from_dict(model), knobs)
    t0 = time.perf_counter()
    labels = generate(m, tuple(int(s) for s in shape), seed=int(seed), device=device)
    pm = m.user_phase_map
    idx = to_indices(labels, pm) if pm is not None else labels - 1
    t1 = time.perf_counter()
    base = [x for x in measures if x not in ("transport", "cell")]
    # Lengths in the model's unit when it has a voxel size (the units rule), else in voxels;
    # the row's "length_unit" says which.
    vs = m.voxel_size
    if vs is not None and len(vs) != idx.ndim and len({float(v) for v in vs}) > 1:
        vs = None
    desc = describe(idx, pm, voxel_size=vs, unit=m.unit if vs is not None else None,
                    directions=tuple(directions), include=tuple(base),
                    allow_absent=True)  # fmt: skip
    t2 = time.perf_counter()
    row = _flatten(desc, directions)
    row["length_unit"] = desc["unit"]
    t3 = t2
    if "transport" in measures:
        tr = describe(idx, pm, voxel_size=vs, directions=tuple(directions),
                      include=("transport",),
                      allow_absent=True, transport_options={"iter_limit": transport_iter_limit,
                                                            "device": device})  # fmt: skip
        row.update(_flatten(tr, directions))
        t3 = time.perf_counter()
    row.update({"t_generate": t1 - t0, "t_descriptors": t2 - t1, "t_transport": t3 - t2})
    if "cell" in measures:
        row.update(_evaluate_cell(idx, pm, cell or {}, row, device))
        row["t_cell"] = time.perf_counter() - t3
    return row


def _evaluate_cell(idx: np.ndarray, pm: Any, cell: Mapping[str, Any], row: dict[str, Any],
                   device: str) -> dict[str, Any]:  # fmt: skip
    """The cell columns of one realization (the TauFactor τ of the row is reused)."""
    from ..cell import CellError, CellSettings, cell_metrics, simulate_cell

    st = CellSettings(**_cell_settings(cell)).validate()
    labels = tuple(pm.labels) if pm is not None else tuple(range(int(idx.max()) + 1))
    tau = row.get(f"tortuosity_factor[{st.electrolyte},{st.axis}]")
    try:
        run = simulate_cell(idx, labels, st, "realization", device=device,
                            tau_electrolyte=None if tau is None else float(tau))  # fmt: skip
    except CellError as exc:
        return {"cell_error": str(exc)}
    return cell_metrics(run)


# ------------------------------------------------------------------------- the cluster
def connect(scheduler: str | None = None, n_workers: int | None = None, timeout: float = 10.0):
    """A ``dask.distributed`` client: to ``scheduler`` (an address) or a new LocalCluster.

    The LocalCluster has ``n_workers`` (default: the CPU count) single-threaded worker processes;
    each task sets torch to one thread, so the cores are not oversubscribed.

    Raises
    ------
    ValueError
        A scheduler that does not answer within ``timeout`` seconds (nothing is started).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ValueError(
                f"the Dask scheduler at {scheduler!r} does not answer ({exc}); check the address "
                "(e.g. tcp://host:8786) or leave --scheduler out to use a local cluster"
            ) from None
    n = int(n_workers or os.cpu_count() or 1)
    with local_worker_environment():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0")  # fmt: skip
    return Client(cluster)


def local_worker_environment():
    """Dask config for our LocalCluster's worker processes: without ``MALLOC_TRIM_THRESHOLD_``.

    Dask's nannies set it by default; any explicit value switches off glibc's dynamic mmap
    threshold, so every large temporary torch allocates (TauFactor's stencil sums, FFT buffers)
    is mmapped, page-faulted and unmapped again: TauFactor ran 6–10× slower in a worker than in a
    plain process (measured: 34 s against 5 s on a 96³ volume). The nanny reads the setting when
    it is created, so restarted workers keep it. Existing clusters keep their own configuration
    (set ``distributed.nanny.pre-spawn-environ`` there the same way).
    """
    import dask
    import distributed  # noqa: F401 - loads distributed's config defaults

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return dask.config.set({"distributed.nanny.pre-spawn-environ": env})


def _worker_memory(client) -> int | None:
    info = client.scheduler_info().get("workers", {})
    limits = [w.get("memory_limit") or 0 for w in info.values()]
    limits = [v for v in limits if v]
    return min(limits) if limits else None


# ------------------------------------------------------------------------- the store
def _row_path(out: Path, p: int, r: int) -> Path:
    return out / "rows" / f"p{p:05d}_r{r:03d}.json"


def _write_json(path: Path, obj: Any) -> None:
    from ..io import atomic_write

    text = json.dumps(obj, default=_json_default, allow_nan=True)

    def _w(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_write(path, _w, overwrite=True)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def _check_store(out: Path, spec: SweepSpec, resume: bool) -> None:
    spec_file = out / "spec.json"
    if spec_file.exists():
        old = json.loads(spec_file.read_text())
        if not resume:
            raise ValueError(
                f"{out} already holds a sweep; pass resume=True (--resume) to continue it, or "
                "choose another output folder (nothing was overwritten)"
            )
        if old.get("spec") != json.loads(json.dumps(spec.to_dict(), default=_json_default)):
            raise ValueError(
                f"{out} holds a sweep with another specification; resume it with the same spec "
                "or choose another output folder"
            )


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
    *,
    client: Any = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    resume: bool = False,
    progress: Callable[[int, int, dict[str, Any]], Any] | None = None,
    retries: int = 1,
) -> Any:
    """Run every missing (point, realization) of ``spec`` on Dask; return the table.

    Parameters
    ----------
    spec : SweepSpec
    out : path
        Result folder (created): ``spec.json``, ``rows/``, then ``table.parquet``, ``table.csv``,
        ``summary.csv``.
    client : distributed.Client, optional
        An existing client (dask-jobqueue, Kubernetes, …). Default: ``scheduler`` or a new
        LocalCluster of ``n_workers`` single-threaded processes (closed at the end).
    resume : bool
        Continue a sweep in ``out`` (same spec): only the missing rows are computed.
    progress : callable, optional
        ``progress(done, total, row)`` after every finished row.
    retries : int
        Times Dask reschedules a task whose worker died.

    Returns
    -------
    pandas.DataFrame
        One row per point × realization (see :func:`load_table`).

    Raises
    ------
    ValueError
        A folder holding another sweep, a scheduler that does not answer, or a volume that does
        not fit a worker's memory (refused before anything starts, naming the limit).
    """
    from ... import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_store(out, spec, resume)
    need = memory_per_task(spec)
    own = client is None
    client = client if client is not None else connect(scheduler, n_workers)
    try:
        limit = _worker_memory(client)
        if limit and need > 0.9 * limit:
            raise ValueError(
                f"one realization of {'×'.join(map(str, spec.shape))} voxels needs about "
                f"{need / 2**30:.1f} GiB, but a worker may use {limit / 2**30:.1f} GiB; use a "
                f"smaller shape, fewer workers per machine (more memory each), or a cluster with "
                "larger workers (nothing was started)"
            )
        import torch

        meta = {
            "spec": json.loads(json.dumps(spec.to_dict(), default=_json_default)),
            "versions": {"napari_gencal": __version__, "torch": torch.__version__,
                         "numpy": np.__version__},  # fmt: skip
            "seeds": {f"{p},{r}": realization_seed(spec.seed, p, r) for p, r in spec.tasks},
        }
        if not (out / "spec.json").exists():
            _write_json(out / "spec.json", meta)
        todo = [(p, r) for p, r in spec.tasks if not _row_path(out, p, r).exists()]
        total, done = len(spec.tasks), len(spec.tasks) - len(todo)
        if todo:
            from distributed import as_completed

            futures = {}
            for p, r in todo:
                fut = client.submit(
                    evaluate, spec.model, spec.design.point(p), realization_seed(spec.seed, p, r),
                    spec.shape, spec.measures, spec.directions, spec.transport_iter_limit,
                    spec.device, 1, spec.extra.get("cell"),
                    key=f"gencal-sweep-{out.name}-{p}-{r}-{time.time_ns()}",
                    pure=False, retries=retries,
                )  # fmt: skip
                futures[fut] = (p, r)
            for fut in as_completed(futures):
                p, r = futures[fut]
                base = {"point": p, "realization": r, "seed": realization_seed(spec.seed, p, r),
                        **spec.design.point(p)}  # fmt: skip
                try:
                    row = {**base, **fut.result(), "error": ""}
                except Exception as exc:  # noqa: BLE001 - recorded, the sweep goes on
                    msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    row = {**base, "error": msg}
                _write_json(_row_path(out, p, r), row)
                done += 1
                if progress is not None:
                    progress(done, total, row)
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    table = load_table(out)
    _write_outputs(out, table, spec)
    return table


def load_table(out: str | os.PathLike):
    """The rows stored in a sweep folder as a DataFrame (sorted by point, realization)."""
    import pandas as pd

    rows = [json.loads(p.read_text()) for p in sorted(Path(out, "rows").glob("p*_r*.json"))]
    if not rows:
        return pd.DataFrame(columns=["point", "realization", "seed", "error"])
    df = pd.DataFrame(rows).sort_values(["point", "realization"]).reset_index(drop=True)
    return df


def summarize(table, knobs: Sequence[str]):
    """Per-point means, standard deviations and 95 % confidence intervals (Student t) of every
    numeric column, over the realizations without error."""
    import pandas as pd
    from scipy import stats

    ok = table[table.get("error", "").fillna("") == ""] if "error" in table else table
    skip = {"point", "realization", "seed", *knobs}
    cols = [c for c in ok.columns if c not in skip and pd.api.types.is_numeric_dtype(ok[c])]
    out = []
    for p, g in ok.groupby("point"):
        row = {"point": p, **{k: g[k].iloc[0] for k in knobs}, "n": len(g)}
        for c in cols:
            x = g[c].astype(float).to_numpy()
            x = x[np.isfinite(x)]
            mean = float(np.mean(x)) if x.size else float("nan")
            sd = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
            half = float(stats.t.ppf(0.975, x.size - 1) * sd / math.sqrt(x.size)) if x.size > 1 \
                else float("nan")  # fmt: skip
            row.update({f"{c}:mean": mean, f"{c}:sd": sd, f"{c}:ci95": half})
        out.append(row)
    return pd.DataFrame(out)


def _write_outputs(out: Path, table, spec: SweepSpec) -> None:
    from ..io import atomic_write

    def write(name: str, fn) -> None:
        atomic_write(out / name, fn, overwrite=True)

    write("table.csv", lambda tmp: table.to_csv(tmp, index=False))
    try:
        write("table.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    except ImportError:  # pragma: no cover - pyarrow missing: CSV only
        pass
    summary = summarize(table, spec.design.knobs)
    write("summary.csv", lambda tmp: summary.to_csv(tmp, index=False))

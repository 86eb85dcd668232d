"""Structure–property relations and sensitivity indices from a sweep table.

* :func:`fit_relation` fits D_eff/D_0 = ε^a · β^b / τ^c (Stenzel et al. 2016: volume fraction ε,
  constrictivity β, mean geodesic tortuosity τ) — linear least squares in log space — or any formula
  the user gives (``"c0 * eps**c1"`` with the named columns, fitted by SciPy), to the rows of one
  phase and direction; the prediction error is measured on held-out realizations (every point's
  last realization is held out when the sweep has two or more).
* :func:`sensitivity` gives Sobol' indices (first and total order) of a Sobol' design, or Morris'
  μ* and σ of a Morris design, for any output column, from SALib.
* :func:`figures` draws descriptor vs knob, property vs descriptor with the fit, and the indices.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Relation", "fit_relation", "sensitivity", "figures", "STENZEL"]

#: The Stenzel-type relation: D_eff/D_0 = ε^a · β^b / τ^c.
STENZEL = "eps**a * beta**b / tau**c"


@dataclass
class Relation:
    """A fitted structure–property relation.

    Attributes
    ----------
    formula : str
    coefficients : dict
    r2 : float
        Coefficient of determination on the fitted rows.
    rmse_train, rmse_test : float
        Root-mean-square prediction error on the fitted and on the held-out rows (NaN when
        nothing was held out).
    relative_test_error : float
        Mean |prediction − value| / value on the held-out rows.
    n_train, n_test : int
    phase, direction : str
    columns : dict
        Variable → table column used.
    """

    formula: str
    coefficients: dict[str, float]
    r2: float
    rmse_train: float
    rmse_test: float
    relative_test_error: float
    n_train: int
    n_test: int
    phase: str
    direction: str
    columns: dict[str, str] = field(default_factory=dict)
    predict: Callable[..., np.ndarray] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (without the prediction function)."""
        return {k: v for k, v in self.__dict__.items() if k != "predict"}

    def __str__(self) -> str:
        co = ", ".join(f"{k} = {v:.4g}" for k, v in self.coefficients.items())
        return (
            f"{self.formula} (phase {self.phase}, {self.direction}): {co}; R² {self.r2:.3f}, "
            f"held-out RMSE {self.rmse_test:.4g} ({100 * self.relative_test_error:.1f} %, "
            f"{self.n_test} rows)"
        )


def _columns(phase: str, direction: str) -> dict[str, str]:
    return {
        "y": f"effective_diffusivity[{phase},{direction}]",
        "eps": f"volume_fraction[{phase}]",
        "beta": f"constrictivity[{phase},{direction}]",
        "tau": f"geodesic_tortuosity[{phase},{direction}]",
        "tau_f": f"tortuosity_factor[{phase},{direction}]",
        "sv": f"specific_surface_area[{phase}]",
        "chord": f"mean_chord_length[{phase},{direction}]",
    }


def _split(table) -> tuple[np.ndarray, np.ndarray]:
    """Train / test masks: the last realization of every point is held out (when there are ≥ 2)."""
    r = table["realization"].to_numpy()
    last = table.groupby("point")["realization"].transform("max").to_numpy()
    counts = table.groupby("point")["realization"].transform("count").to_numpy()
    test = (r == last) & (counts >= 2)
    return ~test, test


def _safe_eval(expr: str, names: dict[str, Any]) -> Any:
    """Evaluate an arithmetic formula over named arrays (no attribute access, no calls but
    numpy's exp/log/sqrt)."""
    tree = ast.parse(expr, mode="eval")
    allowed_calls = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in allowed_calls):
                raise ValueError(f"formula {expr!r}: only exp, log and sqrt may be called")
        elif isinstance(node, ast.Attribute | ast.Subscript | ast.Lambda):
            raise ValueError(f"formula {expr!r}: use plain names, numbers and + - * / **")
    return eval(compile(tree, "<formula>", "eval"), {"__builtins__": {}}, {**allowed_calls,
                                                                          **names})  # noqa: S307


def fit_relation(
    table,
    phase: Any,
    direction: str = "z",
    formula: str = STENZEL,
    coefficients: Sequence[str] | None = None,
) -> Relation:
    """Fit a structure–property relation to the rows of one phase and direction.

    Parameters
    ----------
    table : pandas.DataFrame
        A sweep table (:func:`~.run.run_sweep`).
    phase : label
        The conducting phase (its label, as in the column names).
    direction : str
        Transport direction.
    formula : str
        :data:`STENZEL` (fitted linearly in log space), or an expression of the variables ``eps``
        (volume fraction), ``beta`` (constrictivity), ``tau`` (mean geodesic tortuosity),
        ``tau_f`` (tortuosity factor), ``sv``, ``chord`` and of the coefficients — every other
        name is a coefficient (or list them in ``coefficients``) — for D_eff/D_0.

    Returns
    -------
    Relation

    Raises
    ------
    ValueError
        Missing columns (e.g. a sweep without transport), too few usable rows.
    """
    ph = str(phase)
    cols = _columns(ph, direction)
    variables = [v for v in ("eps", "beta", "tau", "tau_f", "sv", "chord")
                 if v in formula.replace("**", " ")]  # fmt: skip
    need = ["y", *[v for v in variables if _name_in(formula, v)]]
    missing = [cols[v] for v in need if cols[v] not in table.columns]
    if missing:
        raise ValueError(
            f"the table lacks {missing}; the sweep must measure them (measures: transport, "
            "constrictivity, geodesic_tortuosity)"
        )
    df = table[table.get("error", "").fillna("") == ""] if "error" in table else table
    data = {v: df[cols[v]].astype(float).to_numpy() for v in need}
    ok = np.all([np.isfinite(x) & (x > 0) for x in data.values()], axis=0)
    df, data = df[ok], {k: x[ok] for k, x in data.items()}
    if len(df) < 4:
        raise ValueError(
            f"only {len(df)} rows have a percolating phase {ph} along {direction} with every "
            "variable positive; widen the sweep or choose another phase"
        )
    train, test = _split(df)
    if train.sum() < 3:
        train, test = np.ones(len(df), bool), np.zeros(len(df), bool)
    y = data["y"]
    if formula == STENZEL:
        a_mat = np.column_stack([np.log(data["eps"]), np.log(data["beta"]), -np.log(data["tau"])])
        coef, *_ = np.linalg.lstsq(a_mat[train], np.log(y[train]), rcond=None)
        co = {"a": float(coef[0]), "b": float(coef[1]), "c": float(coef[2])}

        def predict(**v):
            return v["eps"] ** co["a"] * v["beta"] ** co["b"] / v["tau"] ** co["c"]
    else:
        from scipy.optimize import curve_fit

        names = list(coefficients) if coefficients else sorted(
            n for n in _names(formula) if n not in (*_columns(ph, direction), "exp", "log", "sqrt")
        )  # fmt: skip
        if not names:
            raise ValueError(f"formula {formula!r} has no coefficient to fit")

        def model_fn(x, *c):
            env = {v: x[i] for i, v in enumerate(need[1:])}
            env.update(dict(zip(names, c, strict=True)))
            return np.asarray(_safe_eval(formula, env), dtype=float)

        xs = np.vstack([data[v] for v in need[1:]])
        popt, _ = curve_fit(model_fn, xs[:, train], y[train], p0=np.ones(len(names)), maxfev=20000)
        co = dict(zip(names, (float(v) for v in popt), strict=True))

        def predict(**v):
            return model_fn(np.vstack([v[n] for n in need[1:]]), *popt)

    pred = predict(**data)
    res_tr = pred[train] - y[train]
    ss_tot = float(np.sum((y[train] - y[train].mean()) ** 2))
    r2 = 1 - float(np.sum(res_tr**2)) / ss_tot if ss_tot > 0 else float("nan")
    if test.any():
        res_te = pred[test] - y[test]
        rmse_te = float(np.sqrt(np.mean(res_te**2)))
        rel_te = float(np.mean(np.abs(res_te) / y[test]))
    else:
        rmse_te = rel_te = float("nan")
    return Relation(formula, co, r2, float(np.sqrt(np.mean(res_tr**2))), rmse_te, rel_te,
                    int(train.sum()), int(test.sum()), ph, direction,
                    {v: cols[v] for v in need}, predict)  # fmt: skip


def _names(expr: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}


def _name_in(expr: str, name: str) -> bool:
    return name in _names(expr) or (expr == STENZEL and name in ("eps", "beta", "tau"))


def sensitivity(design: Any, table, output: str) -> dict[str, Any]:
    """Sensitivity indices of ``output`` over the knobs of a Sobol' or Morris design (SALib).

    The per-point mean over the realizations is analysed (rows with errors are left out; a
    point without a valid row makes the analysis impossible and is named).

    Returns
    -------
    dict
        Sobol': ``{"S1", "S1_conf", "ST", "ST_conf"}`` per knob; Morris: ``{"mu_star",
        "mu_star_conf", "sigma"}`` per knob.
    """
    if design.kind not in ("sobol", "morris") or design.problem is None:
        raise ValueError(
            f"sensitivity indices need a Sobol' or Morris design, this sweep is {design.kind!r}"
        )
    if output not in table.columns:
        raise ValueError(f"no column {output!r} in the table; columns: {list(table.columns)}")
    ok = table[table.get("error", "").fillna("") == ""] if "error" in table else table
    means = ok.groupby("point")[output].mean()
    missing = [p for p in range(design.n_points) if p not in means.index
               or not math.isfinite(float(means.get(p, float("nan"))))]  # fmt: skip
    if missing:
        raise ValueError(f"points {missing[:10]} have no valid {output!r}; cannot analyse")
    y = means.sort_index().to_numpy(dtype=float)
    names = list(design.knobs)
    if design.kind == "sobol":
        from SALib.analyze import sobol as sobol_analyze

        res = sobol_analyze.analyze(design.problem, y, calc_second_order=False, seed=0)
        return {k: {n: float(v) for n, v in zip(names, res[k], strict=True)}
                for k in ("S1", "S1_conf", "ST", "ST_conf")}  # fmt: skip
    from SALib.analyze import morris as morris_analyze

    res = morris_analyze.analyze(design.problem, design.points, y, seed=0,
                                 num_levels=int(design.options.get("levels", 4)))  # fmt: skip
    return {k: {n: float(v) for n, v in zip(names, res[k], strict=True)}
            for k in ("mu_star", "mu_star_conf", "sigma")}  # fmt: skip


def figures(table, design: Any, relation: Relation | None = None,
            indices: dict[str, Any] | None = None, descriptor: str | None = None):  # fmt: skip
    """Figures (matplotlib, no pyplot): descriptor vs the first knob, property vs prediction,
    sensitivity indices; a dict name → Figure with what the arguments allow."""
    from matplotlib.figure import Figure

    figs = {}
    knob = design.knobs[0]
    ok = table[table.get("error", "").fillna("") == ""] if "error" in table else table
    if descriptor is not None and descriptor in ok.columns:
        fig = Figure(figsize=(4.5, 3.2), dpi=110)
        ax = fig.subplots()
        ax.plot(ok[knob], ok[descriptor], "o", ms=3, alpha=0.6)
        g = ok.groupby("point")[[knob, descriptor]].mean()
        ax.plot(g[knob], g[descriptor], "s", color="k", ms=4, label="mean per point")
        ax.set_xlabel(knob)
        ax.set_ylabel(descriptor)
        ax.legend(fontsize=8)
        fig.tight_layout()
        figs["descriptor_vs_knob"] = fig
    if relation is not None and relation.predict is not None:
        cols = relation.columns
        sub = ok[[c for c in cols.values()]].astype(float).dropna()
        sub = sub[(sub > 0).all(axis=1)]
        pred = relation.predict(**{v: sub[c].to_numpy() for v, c in cols.items() if v != "y"})
        fig = Figure(figsize=(4.2, 3.8), dpi=110)
        ax = fig.subplots()
        ax.plot(sub[cols["y"]], pred, "o", ms=3)
        lim = [0, float(max(sub[cols["y"]].max(), np.max(pred)) * 1.05)]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel(f"simulated {cols['y']}")
        ax.set_ylabel("predicted")
        ax.set_title(str(relation.formula), fontsize=8)
        fig.tight_layout()
        figs["property_vs_prediction"] = fig
    if indices:
        keys = [k for k in ("S1", "ST", "mu_star") if k in indices]
        fig = Figure(figsize=(4.8, 3.2), dpi=110)
        ax = fig.subplots()
        x = np.arange(len(design.knobs))
        width = 0.8 / max(1, len(keys))
        for i, k in enumerate(keys):
            ax.bar(x + i * width, [indices[k][n] for n in design.knobs], width, label=k)
        ax.set_xticks(x + width * (len(keys) - 1) / 2, design.knobs, rotation=20, fontsize=8)
        ax.legend(fontsize=8)
        fig.tight_layout()
        figs["sensitivity"] = fig
    return figs

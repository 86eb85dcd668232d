"""From twin to cell: settings, the mapping into PyBaMM, BPX round trip, bad input, knob directions.

Truth: the mapping is checked against the descriptors computed independently on the same volume;
the BPX file against PyBaMM's own BPX reader; knob directions against physics (more electrolyte
or finer particles → more of the capacity delivered at 2C). PyBaMM runs are kept few and short
(small volumes, one DFN per cell and rate).
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_gencal.core.cell import CellError, CellSettings, parse_length, parse_rates

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = (0, 85, 170)


def test_lengths_and_rates_are_parsed_with_units():
    assert parse_length("0.4um") == pytest.approx(0.4e-6)
    assert parse_length("60 µm") == pytest.approx(60e-6)
    assert parse_length("390nm") == pytest.approx(0.39e-6)
    assert parse_length(0.4, default_unit="um") == pytest.approx(0.4e-6)
    for bad in ("0.4", "abc", "-1um", "3 furlongs"):
        with pytest.raises(CellError):
            parse_length(bad)
    with pytest.raises(CellError, match="no unit"):
        parse_length(0.4)
    assert parse_rates("0.2,1,2C,3") == (0.2, 1.0, 2.0, 3.0)
    with pytest.raises(CellError):
        parse_rates("1,-2")
    with pytest.raises(CellError, match="voxel size"):
        CellSettings(85, 0, (170,)).validate()
    with pytest.raises(CellError, match="conductivity"):
        CellSettings(85, 0, (170,), 0.4e-6, electrolyte_kind="solid").validate()


@pytest.fixture(scope="module")
def model():
    from napari_gencal.core.model import ExcursionModel
    from napari_gencal.core.phases import PhaseMap

    return ExcursionModel.default("high", m=6, fractions=(0.45, 0.40, 0.15), width=1.8,
                                  phase_map=PhaseMap(LABELS))  # fmt: skip


def _volume(model, size: int = 48, seed: int = 1, **knobs) -> np.ndarray:
    from napari_gencal.core.generate import generate
    from napari_gencal.core.phases import to_indices
    from napari_gencal.core.sweep.knobs import apply_knobs

    m = apply_knobs(model, knobs) if knobs else model
    return to_indices(generate(m, (size,) * 3, seed=seed, device="cpu"), model.phase_map)


def _settings(**kw) -> CellSettings:
    return CellSettings(85, 0, (170,), voxel_size=0.4e-6, **kw).validate()


def test_figures_and_mapping_equal_the_descriptors(model):
    pytest.importorskip("pybamm")
    from napari_gencal.core.cell.figures import measure_cell_figures
    from napari_gencal.core.cell.mapping import cell_parameter_values
    from napari_gencal.core.descriptors import (
        effective_transport,
        interfacial_areas,
        specific_surface_area,
    )

    vol = _volume(model)
    f = measure_cell_figures(vol, LABELS, _settings(sigma_active=0.18))
    h = 0.4e-6
    assert f.eps_electrolyte == pytest.approx(np.mean(vol == 0))
    assert f.area_active_electrolyte == pytest.approx(interfacial_areas(vol, 3)[(0, 1)] / h)
    assert f.surface_active == pytest.approx(specific_surface_area(vol, 3)[1] / h)
    assert f.tau_electrolyte == pytest.approx(effective_transport(vol, 0, "z").tau_factor)
    assert f.accessible > 0.9 and f.tau_e > 1 and f.sigma_electronic > 0
    pv, record = cell_parameter_values(f, _settings(sigma_active=0.18))
    assert pv["Positive electrode porosity"] == pytest.approx(f.eps_electrolyte)
    assert pv["Positive particle radius [m]"] == pytest.approx(3 * f.eps_active / f.surface_active)
    assert pv["Positive electrode tortuosity factor (electrolyte)"] == f.tau_electrolyte
    # PyBaMM's effective electronic conductivity σ (1 − ε) / τ_s is the measured one
    sig = pv["Positive electrode conductivity [S.m-1]"] * (1 - f.eps_electrolyte) / pv[
        "Positive electrode tortuosity factor (electrode)"
    ]
    assert sig == pytest.approx(f.sigma_electronic, rel=1e-9)
    assert {r["name"] for r in record} >= {"Positive electrode porosity",
                                           "Nominal cell capacity [A.h]"}  # fmt: skip
    # the wetted reading: R from the active|electrolyte area
    pv2, _ = cell_parameter_values(f, _settings(sigma_active=0.18, radius="wetted"))
    assert pv2["Positive particle radius [m]"] == pytest.approx(
        3 * f.eps_active / f.area_active_electrolyte
    )


def test_one_cell_end_to_end_with_bpx_round_trip_and_bad_rate(model, tmp_path):
    pybamm = pytest.importorskip("pybamm")
    from napari_gencal import api

    vol = _volume(model, seed=2)
    labels = np.asarray(LABELS, np.uint8)[vol]
    res = api.cell(labels, 85, 0, 170, "0.4um", rates="1,400", phases="0,85,170",
                   out=tmp_path / "cell")  # fmt: skip
    run = res.runs[0]
    assert run.error == ""
    ok, bad = run.discharges
    assert ok.error == "" and 0.5 < ok.utilisation <= 1.0
    assert ok.energy / ok.capacity == pytest.approx(ok.mean_voltage)
    assert "400C" in bad.error and ("cannot deliver" in bad.error or "beyond" in bad.error)
    assert "400C" in str(res) and (tmp_path / "cell" / "table.csv").exists()
    with pytest.raises(FileExistsError):
        res.write(tmp_path / "cell")
    # PyBaMM reads our BPX file back to the same electrode
    files = list((tmp_path / "cell").glob("*.bpx.json"))
    assert len(files) == 1
    back = pybamm.ParameterValues.create_from_bpx(str(files[0]))
    pv = run.parameter_values
    for name in ("Positive electrode porosity", "Positive particle radius [m]",
                 "Positive electrode thickness [m]", "Nominal cell capacity [A.h]"):  # fmt: skip
        assert back[name] == pytest.approx(float(pv[name]), rel=1e-9), name
    assert back["Positive electrode active material volume fraction"] == pytest.approx(
        float(pv["Positive electrode active material volume fraction"]), rel=1e-9
    )
    eps = float(pv["Positive electrode porosity"])
    b = back["Positive electrode Bruggeman coefficient (electrolyte)"]
    assert eps**b == pytest.approx(eps / float(pv["Positive electrode tortuosity factor "
                                                  "(electrolyte)"]), rel=1e-9)  # fmt: skip


def test_bad_input_gives_clear_errors(model):
    pytest.importorskip("pybamm")
    from napari_gencal.core.cell import simulate_cell

    vol = _volume(model, size=24)
    with pytest.raises(CellError, match="not a phase of the volume"):
        simulate_cell(vol, LABELS, CellSettings(86, 0, (170,), voxel_size=0.4e-6))
    # an electrolyte cut by a layer of active material: no ionic path → a run that says why
    cut = vol.copy()
    cut[12] = 1
    run = simulate_cell(cut, LABELS, _settings(rates=(1.0,)))
    assert "does not percolate" in run.error and not run.discharges


def test_knob_directions_at_2c(model):
    """More electrolyte → lower τ → more of the capacity at 2C; finer structure (smaller
    particles) → more of it too. Voxels of 1.5 µm give particles of R ≈ 5 µm, as in NMC
    cathodes (with 0.4 µm voxels this model's particles are ≈ 1.4 µm and solid diffusion does not
    limit: then the length scale acts only through τ, measured on 48³)."""
    pytest.importorskip("pybamm")
    from napari_gencal.core.cell import simulate_cell

    s = CellSettings(85, 0, (170,), voxel_size=1.5e-6, rates=(2.0,), sigma_active=0.18).validate()

    def run(**knobs):
        r = simulate_cell(_volume(model, seed=3, **knobs), LABELS, s)
        assert r.error == "", r.error
        return r.figures, r.discharges[0]

    f_lo, d_lo = run(**{"vf:0": 0.35})
    f_hi, d_hi = run(**{"vf:0": 0.55})
    assert f_hi.tau_electrolyte < f_lo.tau_electrolyte
    assert d_hi.utilisation > d_lo.utilisation
    f_fine, d_fine = run(length_scale=0.6)
    f_base, d_base = run()
    assert f_fine.particle_radius_geometric < f_base.particle_radius_geometric
    assert d_fine.utilisation > d_base.utilisation


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    pytest.importorskip("pybamm")
    from napari_gencal.cli import main

    vol = np.zeros((12, 12, 12), np.uint8)
    vol[:, :, 6:] = 85
    np.save(tmp_path / "v.npy", vol)
    rc = main(["cell", str(tmp_path / "v.npy"), "--phases", "0,85", "--active", "85",
               "--electrolyte", "0", "--conductor", "170", "--voxel-size", "0.4um"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "conductor label 170 is not a phase" in err
    rc = main(["cell", str(tmp_path / "v.npy"), "--phases", "0,85", "--active", "85",
               "--electrolyte", "0", "--voxel-size", "0.4 furlong"])  # fmt: skip
    assert rc == 2 and "unknown unit" in capsys.readouterr().err


def test_a_sweep_row_gets_cell_columns_and_reuses_taufactor(model):
    pytest.importorskip("pybamm")
    from napari_gencal.core.sweep import SweepSpec, grid
    from napari_gencal.core.sweep.run import evaluate

    cell = {"active": 85, "electrolyte": 0, "conductors": [170], "voxel_size": "1.5um",
            "rates": [1], "sigma_active": 0.18}  # fmt: skip
    measures = ("volume_fraction", "interfaces", "transport", "cell")
    row = evaluate(model.to_dict(), {}, 3, (40, 40, 40), measures, ("z",), cell=cell)
    assert row["cell_error"] == "" and 0 < row["utilisation[1C]"] <= 1
    assert {"capacity[1C]", "energy[1C]", "interface_area[0|85]", "tpb_length"} <= set(row)
    assert row["t_cell"] > 0 and np.isnan(row["cell:tau_e"])  # sweeps skip τ_e
    with pytest.raises(ValueError, match="cell measure needs its settings"):
        SweepSpec(model.to_dict(), grid({"vf:0": [0.4]}), measures=measures)
    with pytest.raises(ValueError, match="voxel size"):
        SweepSpec(model.to_dict(), grid({"vf:0": [0.4]}), measures=measures,
                  extra={"cell": {"active": 85, "electrolyte": 0}})  # fmt: skip

"""The package installs as a napari plugin, starts without torch, and has a working command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PY = sys.executable
ENTRY_MODULES = (
    "napari_gencal",
    "napari_gencal._reader",
    "napari_gencal._writer",
    "napari_gencal._sample_data",
    "napari_gencal._widgets",
)


def _run(args: list[str], env: dict | None = None, cwd: Path | None = None, timeout: int = 300):
    return subprocess.run(
        args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )


def _npe2() -> str:
    exe = Path(PY).with_name("npe2")
    if not exe.exists():
        pytest.skip("npe2 is not installed (pip install -e .[test])")
    return str(exe)


def test_root_manifest_is_the_package_manifest():
    """One manifest: the root napari.yaml (design card) is the file shipped inside the package."""
    root = REPO / "napari.yaml"
    pkg = REPO / "src" / "napari_gencal" / "napari.yaml"
    assert pkg.is_file()
    assert root.resolve() == pkg.resolve() or root.read_bytes() == pkg.read_bytes()
    manifest = yaml.safe_load(pkg.read_text())
    assert manifest["name"] == "napari-gencal"


def test_manifest_entry_point_declared():
    """napari finds the manifest through the `napari.manifest` entry point of the installed dist."""
    from importlib.metadata import distribution

    eps = [ep for ep in distribution("napari-gencal").entry_points if ep.group == "napari.manifest"]
    assert [ep.value for ep in eps] == ["napari_gencal:napari.yaml"]


def test_manifest_commands_resolve_and_validate():
    """Every command in the manifest imports (npe2 validate --imports) in this environment."""
    res = _run([_npe2(), "validate", "--imports", "napari-gencal"])
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_napari_entry_points_do_not_import_torch(module):
    """napari must start fast: modules it imports at start-up or on menu open leave torch out."""
    code = (
        f"import sys, importlib; importlib.import_module({module!r}); "
        "heavy = [m for m in ('torch', 'matplotlib.pyplot') if m in sys.modules]; "
        "print(','.join(heavy)); sys.exit(1 if heavy else 0)"
    )
    res = _run([PY, "-c", code])
    assert res.returncode == 0, (
        f"{module} imports {res.stdout.strip()} at import time\n{res.stderr}"
    )


def test_cli_version_and_help():
    import napari_gencal

    gencal = Path(PY).with_name("gencal")
    exe = [str(gencal)] if gencal.exists() else [PY, "-m", "napari_gencal.cli"]
    res = _run([*exe, "--version"])
    assert res.returncode == 0 and napari_gencal.__version__ in res.stdout
    res = _run([*exe, "--help"])
    assert res.returncode == 0
    for sub in ("tppf", "generate", "describe", "compare", "calibrate", "demo"):
        assert sub in res.stdout
        sub_help = _run([*exe, sub, "--help"])
        assert sub_help.returncode == 0, sub_help.stderr
        assert "usage: gencal " + sub in sub_help.stdout


def test_cli_reports_bad_input_without_traceback(tmp_path):
    """A user error is one line on stderr and exit status 2, not a Python traceback."""
    from napari_gencal.cli import main

    with pytest.raises(SystemExit):
        main(["no-such-command"])
    grey = tmp_path / "grey.npy"
    import numpy as np

    np.save(grey, np.random.default_rng(0).random((32, 32)))
    gencal = Path(PY).with_name("gencal")
    if not gencal.exists():
        pytest.skip("console script not installed")
    res = _run([str(gencal), "describe", str(grey)])
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    assert "greyscale" in res.stderr or "non-integer" in res.stderr


@pytest.mark.slow
def test_wheel_carries_manifest_and_validates(tmp_path):
    """A plain (non-editable) install carries napari.yaml inside the package and npe2 accepts it."""
    res = _run(
        [
            PY,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
    )
    if res.returncode != 0 and "setuptools" in res.stderr:
        pytest.skip("setuptools is not available for an offline wheel build")
    assert res.returncode == 0, res.stderr
    (wheel,) = tmp_path.glob("napari_gencal-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert "napari_gencal/napari.yaml" in names
        ep = next(n for n in names if n.endswith("entry_points.txt"))
        assert "napari_gencal:napari.yaml" in zf.read(ep).decode()
    site = tmp_path / "site"
    res = _run([PY, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)])
    assert res.returncode == 0, res.stderr
    # The wheel's copy must win over the editable checkout: put it first on the path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    res = _run(
        [PY, "-c", "import napari_gencal, json; print(json.dumps(napari_gencal.__file__))"],
        env=env,
        cwd=tmp_path,
    )
    assert json.loads(res.stdout).startswith(str(site)), res.stdout + res.stderr
    res = _run([_npe2(), "validate", "--imports", "napari-gencal"], env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


def test_no_qt_binding_in_runtime_dependencies():
    """Users bring their own Qt binding; the runtime requirements must not pin one."""
    from importlib.metadata import requires

    reqs = [r for r in (requires("napari-gencal") or []) if "extra ==" not in r]
    names = {
        r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        for r in reqs
    }
    assert not names & {"pyqt5", "pyqt6", "pyside2", "pyside6"}
    assert {"napari", "torch", "qtpy", "magicgui"} <= names


def test_core_has_no_gui_imports():
    """The compute core imports neither Qt nor napari (checked on the source, so it cannot rot)."""
    import re

    pattern = re.compile(
        r"^\s*(?:import|from)\s+(?:napari|qtpy|magicgui|PyQt\d|PySide\d|matplotlib\.pyplot)\b",
        re.MULTILINE,
    )
    core = REPO / "src" / "napari_gencal" / "core"
    offenders = [
        f"{p.relative_to(REPO)}: {m.group(0).strip()}"
        for p in core.rglob("*.py")
        for m in pattern.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme
    assert shutil.which("bash")


def test_cli_descriptor_names_match_the_core():
    """`gencal describe --include` lists the names without importing the core (fast --help);
    this keeps that copy equal to the core's list."""
    from napari_gencal.cli.describe import _ALL
    from napari_gencal.core.descriptors import DESCRIPTORS

    assert tuple(_ALL) == tuple(DESCRIPTORS)

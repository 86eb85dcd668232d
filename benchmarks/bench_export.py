"""Benchmark: `gencal export` of a 256³ three-phase volume to every format, and of a 1024³ zarr
twin to VTK/MetaImage out of core — time and peak memory against references measured in the
same run.

Run: ``python benchmarks/bench_export.py [--volume ../shared/data/electrode.tiff]
[--voxel-size 0.390625um] [--big 1024] [--no-big] [--formats vti,mhd,nrrd,stl,ply,pnm]``

Figures printed:

* the reference: ``tifffile.imwrite`` of the same volume (time), and the peak resident memory of
  a process that imports everything an export imports and reads the volume (the baseline);
* per format, through the command line in a fresh process (what a user runs): wall time, its
  ratio to the TIFF write, peak memory above the baseline and its ratio to the volume's bytes
  (the acceptance: ≤ 30 s on 2 cores, ≤ 4× the volume's bytes);
* round trips read with the libraries a user would use (SimpleITK, VTK): labels, spacing,
  origin equal;
* meshes read back (trimesh, as written): watertight, enclosed volume against the voxel count ×
  voxel volume, bounding box against the volume's box;
* the 1024³ zarr twin (tiles of the volume, 128³ chunks) exported to .vti and .mhd: time, peak
  memory against the 1 GiB the volume would take, and the MetaImage checked chunk by chunk
  against the zarr store through a memory map.

The default volume is ``electrode.tiff`` (256³, three phases, a GAN-generated cathode — a twin
in its own right); its voxel size is TauFactor's 100 µm / 256.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VOLUME = REPO.parent / "shared" / "data" / "electrode.tiff"

# A fresh process that imports what the format needs and opens the volume, notes its resident
# memory, resets the kernel's peak counter (VmHWM), runs api.export — the same call `gencal
# export` makes — and reports the peak above that and the peak of Python/NumPy allocations.
CHILD = r"""
import json, sys, time, tracemalloc
import numpy as np
from napari_gencal import api
from napari_gencal.core import export as ex
fmt, src, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
if fmt in ("vti", "mhd", "mha", "nrrd"):
    import vtk, SimpleITK
else:
    import skimage.measure, trimesh
    if fmt in ("stl", "ply"):
        try:  # VTK's libraries (~150 MiB resident once loaded) are a fixed cost, not the export's
            import vtk
            from vtk.util import numpy_support
        except ImportError:
            pass
    if fmt == "pnm":
        import porespy
if src.endswith(".zarr"):
    volume = src
else:
    volume = api.read_labels(src)
def status(key):
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith(key)) / 1024
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # Linux: reset the peak (VmHWM) to the current resident memory
before = status("VmRSS:")
tracemalloc.start()
import resource
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
c0 = cpu()
t = time.perf_counter()
res = api.export(volume, out, fmt, overwrite=True, **extra)
wall = time.perf_counter() - t
cpu_s = cpu() - c0
traced = tracemalloc.get_traced_memory()[1] / 2**20
peak = status("VmHWM:")
print(json.dumps({"wall": wall, "cpu": cpu_s, "before": before, "peak": peak, "traced": traced,
                  "summary": res.summary()}))
"""


def _child(fmt: str, src: Path, out: Path, **extra) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, fmt, str(src), str(out), json.dumps(extra)],
                         capture_output=True, text=True)  # fmt: skip
    if res.returncode != 0:
        raise SystemExit(f"export to {fmt} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _peak(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command in a fresh process: wall seconds, its own peak RSS (MiB, reported by a
    wrapper process whose only child it is), stdout."""
    wrapper = (
        "import resource, subprocess, sys, time, json;"
        "t=time.perf_counter(); p=subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "w=time.perf_counter()-t;"
        "r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024;"
        "print(json.dumps({'wall': w, 'rss': r, 'rc': p.returncode, 'out': p.stdout,"
        "'err': p.stderr}))"
    )
    res = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    d = json.loads(res.stdout)
    if d["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{d['err']}")
    return d["wall"], d["rss"], d["out"]


def _gencal(*args: str) -> list[str]:
    return [sys.executable, "-m", "napari_gencal.cli", *args]


def _roundtrip(fmt: str, path: Path, labels: np.ndarray, spacing, origin) -> str:
    import SimpleITK as sitk
    import vtk
    from vtk.util import numpy_support

    if fmt == "vti":
        r = vtk.vtkXMLImageDataReader()
        r.SetFileName(str(path))
        r.Update()
        o = r.GetOutput()
        back = numpy_support.vtk_to_numpy(o.GetCellData().GetArray("labels"))
        back = back.reshape(labels.shape)
        sp = o.GetSpacing()
        org = tuple(a + s / 2 for a, s in zip(o.GetOrigin(), sp, strict=True))
        lib = "VTK vtkXMLImageDataReader (cell centres)"
    else:
        img = sitk.ReadImage(str(path))
        back, sp, org = sitk.GetArrayFromImage(img), img.GetSpacing(), img.GetOrigin()
        lib = "SimpleITK"
    ok = (
        np.array_equal(back, labels)
        and np.allclose(sp, spacing[::-1], rtol=1e-6)
        and np.allclose(org, origin[::-1], atol=1e-9)
    )
    return f"{'same' if ok else 'DIFFERENT'} labels/spacing/origin ({lib})"


def _mesh_check(path: Path, labels: np.ndarray, label: int, spacing) -> str:
    import trimesh

    m = trimesh.load(path, process=path.suffix == ".stl")
    truth = np.count_nonzero(labels == label) * float(np.prod(spacing))
    n = np.array(labels.shape)[::-1]
    box_lo, box_hi = -0.5 * np.array(spacing[::-1]), (n - 0.5) * np.array(spacing[::-1])
    inside = bool(np.all(m.bounds[0] >= box_lo - 1e-9) and np.all(m.bounds[1] <= box_hi + 1e-9))
    return (f"{path.name}: watertight {m.is_watertight}, volume {m.volume:.6g} vs voxels "
            f"{truth:.6g} ({100 * (m.volume / truth - 1):+.4f} %), bounds "
            f"{np.round(m.bounds, 3).tolist()} inside the volume's box {inside}")  # fmt: skip


def _make_big(src: np.ndarray, n: int, path: Path, spacing: float) -> None:
    """A zarr twin of n³ voxels: tiles of ``src`` (flipped alternately so tiles join), 128³
    chunks, written chunk by chunk."""
    import zarr

    z = zarr.open_array(str(path), mode="w", shape=(n, n, n), chunks=(128, 128, 128),
                        dtype=src.dtype)  # fmt: skip
    s = src.shape[0]
    for z0 in range(0, n, 128):
        slab = np.empty((128, n, n), src.dtype)
        for y0 in range(0, n, s):
            for x0 in range(0, n, s):
                t = src[(z0 % s) : (z0 % s) + 128]
                if (y0 // s) % 2:
                    t = t[:, ::-1]
                if (x0 // s) % 2:
                    t = t[:, :, ::-1]
                slab[:, y0 : y0 + s, x0 : x0 + s] = t
        z[z0 : z0 + 128] = slab
    z.attrs.update({"napari_gencal": "twin", "phase_labels": [0, 85, 170], "seed": 0,
                    "voxel_size": [spacing] * 3, "model": {"unit": "um"}})  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volume", default=str(DEFAULT_VOLUME))
    ap.add_argument("--voxel-size", default="0.390625um")
    ap.add_argument("--formats", default="vti,mhd,nrrd,stl,ply,pnm")
    ap.add_argument("--pnm-phase", type=int, default=0, help="phase of the pore network")
    ap.add_argument("--big", type=int, default=1024)
    ap.add_argument("--no-big", action="store_true")
    ap.add_argument("--tmp", default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()

    import tifffile

    from napari_gencal.core.io import write_tiff
    from napari_gencal.core.units import parse_voxel_size

    labels = tifffile.imread(args.volume)
    vs, unit = parse_voxel_size(args.voxel_size, 3)
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="gencal-bench-export-"))
    tmp.mkdir(parents=True, exist_ok=True)
    vol = write_tiff(tmp / "volume.tif", labels, voxel_size=vs, unit=unit or "um",
                     overwrite=True)  # fmt: skip
    nbytes = labels.nbytes
    print(f"volume {args.volume}: {labels.shape} {labels.dtype}, {nbytes / 2**20:.1f} MiB, "
          f"labels {np.unique(labels).tolist()}, voxel {vs} {unit}; cores {os.cpu_count()}")

    t0 = time.perf_counter()
    tifffile.imwrite(tmp / "reference.tif", labels)
    t_ref = time.perf_counter() - t0
    print(f"reference: tifffile.imwrite of the same volume {1000 * t_ref:.1f} ms")
    print("CLI: `gencal export` in a fresh process (wall, incl. start-up and reading the TIFF);")
    print("API: api.export in a fresh process after the imports and the read (wall, peak RSS")
    print("     above the RSS before the call, peak of Python/NumPy allocations by tracemalloc)")
    print()
    print("CPU: process CPU time of the API call, all threads (on a shared, loaded machine the")
    print("     steadier figure; on an idle 2-core machine wall ≈ CPU for single-threaded parts)")
    print()
    print(f"{'format':8} {'CLI s':>6} {'API s':>6} {'CPU s':>6} {'× tiff':>7} {'RSS+ MiB':>9} "
          f"{'× vol':>6} {'traced MiB':>10} {'× vol':>6}")  # fmt: skip
    rows = {}
    fmts = [f for f in args.formats.split(",") if f]
    if "stl" in fmts and "ply" in fmts:
        fmts.append("stl,ply")
    vol_mib = nbytes / 2**20
    for fmt in fmts:
        out = tmp / f"out_{fmt.replace(',', '_')}" / "twin"
        extra = {"phase": args.pnm_phase} if fmt == "pnm" else {}
        cli_extra = ["--phase", str(args.pnm_phase)] if fmt == "pnm" else []
        wall, _, stdout = _peak(_gencal("export", str(vol), "--to", fmt, "--out", str(out),
                                        "--overwrite", *cli_extra))  # fmt: skip
        d = _child(fmt, vol, out, **extra)
        above = max(0.0, d["peak"] - d["before"])
        rows[fmt] = (wall, d, stdout, out)
        print(f"{fmt:8} {wall:6.1f} {d['wall']:6.1f} {d['cpu']:6.1f} {wall / t_ref:7.0f} "
              f"{above:9.0f} {above / vol_mib:6.2f} {d['traced']:10.0f} "
              f"{d['traced'] / vol_mib:6.2f}")
    print()
    origin = (0.0, 0.0, 0.0)
    for fmt in ("vti", "mhd", "nrrd"):
        if fmt in rows:
            path = rows[fmt][3].with_name(f"twin.{fmt}")
            print(f"round trip {fmt}: {_roundtrip(fmt, path, labels, vs, origin)}")
    for fmt in ("stl", "ply"):
        if fmt in rows:
            for line in rows[fmt][2].splitlines():
                if line.startswith("phase "):
                    print(f"  {fmt} {line}")
            for lab in np.unique(labels):
                p = rows[fmt][3].with_name(f"twin_{int(lab)}.{fmt}")
                print(f"  check {_mesh_check(p, labels, int(lab), vs)}")
    if "pnm" in rows:
        for line in rows["pnm"][2].splitlines():
            if line.startswith("network"):
                print(f"pnm: {line}")
    for fmt in rows:
        for f in rows[fmt][3].parent.iterdir():
            f.unlink()
    if "stl,ply" in rows:
        print("stl,ply: one marching-cubes pass per phase writes both")

    if args.no_big:
        return
    n = args.big
    big = tmp / f"twin{n}.zarr"
    if not big.exists():
        t0 = time.perf_counter()
        _make_big(labels, n, big, float(vs[0]))
        print(f"\nbuilt {big.name}: {n}³ uint8 in 128³ chunks ({time.perf_counter() - t0:.0f} s)")
    big_bytes = n**3
    print(f"{n}³ zarr twin: {big_bytes / 2**30:.2f} GiB if loaded")
    for fmt in ("vti", "mhd"):
        out = tmp / "big_out" / f"twin{n}.{fmt}"
        wall, _, _ = _peak(_gencal("export", str(big), "--to", fmt, "--out", str(out),
                                   "--overwrite"))  # fmt: skip
        d = _child(fmt, big, out)
        above = max(0.0, d["peak"] - d["before"])
        size = sum(p.stat().st_size for p in out.parent.glob(f"twin{n}.*"))
        print(f"{fmt}: CLI {wall:.1f} s, API {d['wall']:.1f} s (CPU {d['cpu']:.1f} s); peak RSS "
              f"{above:.0f} MiB above "
              f"the process before the call = {above * 2**20 / big_bytes:.3f} × the volume; "
              f"traced {d['traced']:.0f} MiB; {size / 2**30:.2f} GiB written")  # fmt: skip
        if fmt == "mhd":
            import SimpleITK as sitk
            import zarr

            reader = sitk.ImageFileReader()
            reader.SetFileName(str(out))
            reader.ReadImageInformation()
            raw = np.memmap(out.with_suffix(".raw"), dtype=np.uint8, mode="r", shape=(n, n, n))
            z = zarr.open_array(str(big), mode="r")
            same = all(np.array_equal(raw[z0 : z0 + 128], z[z0 : z0 + 128]) for z0 in
                       range(0, n, 128))  # fmt: skip
            print(f"  MetaImage header read by SimpleITK: size {reader.GetSize()}, spacing "
                  f"{reader.GetSpacing()}, origin {reader.GetOrigin()}; data equal to the zarr "
                  f"store chunk by chunk: {same}")  # fmt: skip
        for f in out.parent.glob(f"twin{n}.*"):
            f.unlink()


if __name__ == "__main__":
    main()

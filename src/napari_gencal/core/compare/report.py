"""``report.md`` with the table, the PNG figures and the descriptors as JSON and CSV, written
atomically into a new folder (a temporary folder renamed at the end), never over an existing one."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

from .images import compare_images
from .table import Comparison

# --- report ----------------------------------------------------------------------------------


def write_report(
    comparison_or_path: Comparison | str | os.PathLike,
    path: str | os.PathLike | Any | None = None,
    model: Any = None,
    *,
    overwrite: bool = False,
    **compare_options: Any,
) -> Path:
    """Write ``report.md``, PNG figures and the descriptors (JSON, CSV) into a new folder.

    Two call forms::

        write_report(comparison, "out/report.md")
        write_report("out/report.md", data_label_image, model_or_volume, n=10, seed=0)

    The folder is the parent of the ``.md`` path (or the path itself when it has no ``.md``
    suffix). Everything is written into a temporary folder beside it and renamed at the end, so a
    crash leaves no half report; an existing folder is never touched unless ``overwrite``, and an
    existing report file is never replaced.

    Returns
    -------
    Path
        The path of ``report.md``.
    """
    if isinstance(comparison_or_path, Comparison):
        comp = comparison_or_path
        if path is None:
            raise ValueError("write_report(comparison, path): give the path of the report")
        target = Path(path)  # type: ignore[arg-type]
    else:
        target = Path(comparison_or_path)
        comp = compare_images(path, model, **compare_options)
    if target.suffix.lower() == ".md":
        folder, md_name = target.parent, target.name
    else:
        folder, md_name = target, "report.md"
    stem = Path(md_name).stem
    md_path = folder / md_name
    if md_path.exists() and not overwrite:
        raise FileExistsError(f"{md_path} already exists; choose another name or folder")
    folder_is_new = not folder.exists()
    if not folder_is_new:
        clash = [
            p for p in (folder / f"{stem}_descriptors.json", folder / f"{stem}.csv") if p.exists()
        ]
        if clash and not overwrite:
            raise FileExistsError(f"{clash[0]} already exists; choose another folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        lines = [f"# Data vs model: {stem}", "", comp.to_markdown()]
        if comp.warnings:
            lines += ["", "Notes:", ""] + [f"- {w}" for w in comp.warnings]
        lines += [
            "",
            f"Lengths in {comp.data.get('unit', 'voxel')}; relative error = "
            "(model − data)/|data|. Methods:",
            "",
        ]
        lines += [f"- {k}: {v}" for k, v in comp.data.get("method", {}).items()]
        figs = comp.figures()
        for name, fig in figs.items():
            png = f"{stem}_{name}.png"
            fig.savefig(tmp / png, dpi=120)
            lines += ["", f"![{name}]({png})"]
        (tmp / md_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        (tmp / f"{stem}_descriptors.json").write_text(comp.to_json(), encoding="utf-8")
        (tmp / f"{stem}.csv").write_text(comp.to_csv(), encoding="utf-8")
        if folder_is_new:
            os.replace(tmp, folder)
        else:  # move the finished files in; each rename is atomic
            for f in tmp.iterdir():
                os.replace(f, folder / f.name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return md_path

"""Where the data is: `resolve_source(path)` finds a data set's files and detects its layout.

The input may be a zip, a folder (or its single subfolder) or a ratings file, on any filesystem
TFX reads (local, gs://, s3://, hdfs://, ram://).
"""

from __future__ import annotations

import os
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Iterable, Optional

from tfx.dsl.io import fileio

from kiko.data.movielens import AUTO, LAYOUTS, RELEASE_NAME, get_layout, ml10m, ml1m, mlcsv
from kiko.data.movielens.files import FileRef, basename, is_zip, join, parent
from kiko.data.movielens.layout import Layout

@dataclass(frozen=True)
class Source:
    """The files of one data set: ratings, and the side files its layout has when present."""

    layout_name: str
    # e.g. "ml-25m" when the folder or zip is named so (the name is only reported; the
    # layout decides how the files are read), else the layout's name
    release: str
    ratings: FileRef
    users: Optional[FileRef] = None
    movies: Optional[FileRef] = None

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.layout_name]

    @property
    def files(self) -> tuple[FileRef, ...]:
        """Every file the data is read from (ratings first)."""
        return tuple(f for f in (self.ratings, self.users, self.movies) if f is not None)

    def describe(self) -> str:
        layout = self.layout
        parts = [f"MovieLens layout {layout.name} ({self.release}; {layout.releases}): "
                 f"ratings {self.ratings.display_name}"]
        for kind, ref, name in (("users", self.users, layout.users_file),
                                ("movies", self.movies, layout.movies_file)):
            if name:
                parts.append(f"{kind} {ref.display_name if ref else '(none: ' + name + ' absent)'}")
        return ", ".join(parts)


def _release(name: str, layout: Layout) -> str:
    match = RELEASE_NAME.search(name)
    return match.group(0).lower() if match else layout.name


def _candidates(names: Iterable[str], layout: str) -> list[Layout]:
    """Layouts whose ratings file is among `names` (base names of one folder)."""
    names = set(names)
    if layout != AUTO:
        return [get_layout(layout)] if get_layout(layout).ratings_file in names else []
    found = [c for c in LAYOUTS.values() if c.ratings_file in names]
    # ML-1M and ML-10M share ratings.dat: ML-10M's release ships tags.dat, ML-1M's does not.
    marked = {c.ratings_file for c in found if c.marker_file and c.marker_file in names}
    return [c for c in found
            if (c.marker_file in names if c.marker_file else c.ratings_file not in marked)]


def _pick(candidates: list[Layout], where: str, layout: str) -> Layout:
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        wanted = ([get_layout(layout)] if layout != AUTO else list(LAYOUTS.values()))
        files = ", ".join(sorted({c.ratings_file for c in wanted}))
        raise FileNotFoundError(f"no MovieLens ratings file ({files}) in {where}")
    raise ValueError(f"{where} holds the ratings files of several layouts "
                     f"({', '.join(c.name for c in candidates)}); pass --layout or the "
                     "ratings file itself")


def _forced_layout_missing(where: str, layout: str, detect) -> FileNotFoundError:
    """The error for a forced `layout` whose ratings file is not at `where`: what that layout
    expects, and what detection (`detect()`, the Source of layout auto) finds there instead."""
    try:
        detected = detect()
    except (FileNotFoundError, ValueError):
        detected = None
    found = (f"; it holds {detected.ratings.display_name}, the ratings file of layout "
             f"{detected.layout_name} (pass --layout {detected.layout_name}, or {AUTO} to "
             "detect it)") if detected else ""
    return FileNotFoundError(f"layout {layout} reads a ratings file named "
                             f"{get_layout(layout).ratings_file}, and {where} holds none (nor "
                             f"does a subfolder of it){found}")


def _local(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _listing(folder: str) -> tuple[list[str], list[str]]:
    """(file names, subfolder names) directly in `folder`."""
    files, folders = [], []
    for name in fileio.listdir(folder):
        name = name.rstrip("/")
        (folders if fileio.isdir(join(folder, name)) else files).append(name)
    return files, folders


def _resolve_folder(folder: str, layout: str) -> Source:
    files, folders = _listing(folder)
    found = _candidates(files, layout)
    if not found:
        nested = []
        for sub in sorted(folders):
            sub_files, _ = _listing(join(folder, sub))
            nested += [(sub, c) for c in _candidates(sub_files, layout)]
        if len(nested) > 1:
            raise ValueError(f"several MovieLens data sets under {folder} ("
                             + ", ".join(f"{sub}/{c.ratings_file}" for sub, c in nested)
                             + "); pass the folder or ratings file to use")
        if nested:
            sub, chosen = nested[0]
            return _resolve_folder(join(folder, sub), chosen.name)
    if not found and layout != AUTO:
        raise _forced_layout_missing(folder, layout, lambda: _resolve_folder(folder, AUTO))
    chosen = _pick(found, f"{folder} (nor in a subfolder of it, such as ml-1m/)", layout)
    return _source_in_folder(folder, join(folder, chosen.ratings_file), chosen, files)


def _source_in_folder(folder: str, ratings_path: str, layout: Layout,
                      names: Iterable[str]) -> Source:
    names = set(names)

    def side(name: Optional[str]) -> Optional[FileRef]:
        return FileRef(join(folder, name)) if name and name in names else None

    return Source(layout.name, _release(basename(folder), layout), FileRef(ratings_path),
                  side(layout.users_file), side(layout.movies_file))


def _resolve_zip(path: str, layout: str) -> Source:
    try:
        with fileio.open(path, "rb") as f:
            names = [n for n in zipfile.ZipFile(f).namelist() if not n.endswith("/")]
    except zipfile.BadZipFile:
        raise ValueError(f"{path} is not a valid zip archive") from None
    by_folder: dict[str, list[str]] = {}
    for name in names:
        by_folder.setdefault(posixpath.dirname(name), []).append(posixpath.basename(name))
    found = [(folder, c) for folder, members in sorted(by_folder.items())
             for c in _candidates(members, layout)]
    if len(found) > 1:
        raise ValueError(f"{path} holds several MovieLens data sets ("
                         + ", ".join(posixpath.join(f, c.ratings_file) for f, c in found)
                         + "); extract it and pass the one to use")
    if not found and layout != AUTO:
        raise _forced_layout_missing(path, layout, lambda: _resolve_zip(path, AUTO))
    folder, chosen = found[0] if found else ("", _pick([], path, layout))
    members = set(by_folder[folder])

    def member(name: Optional[str]) -> Optional[FileRef]:
        if not name or name not in members:
            return None
        return FileRef(path, posixpath.join(folder, name) if folder else name)

    return Source(chosen.name, _release(folder or basename(path), chosen),
                  member(chosen.ratings_file), member(chosen.users_file),
                  member(chosen.movies_file))


def _resolve_file(path: str, layout: str) -> Source:
    """A ratings file of any name; side files of its layout are looked up next to it."""
    folder = parent(path)
    names, _ = _listing(folder)
    if layout != AUTO:
        chosen = get_layout(layout)
    else:
        name = basename(path)
        by_name = [c for c in LAYOUTS.values() if c.ratings_file == name]
        if name.lower().endswith(".csv"):
            chosen = mlcsv.LAYOUT
        elif len(by_name) == 1:
            chosen = by_name[0]
        else:  # ratings.dat or any other name: the `::` format of ML-1M, or ML-10M's
            chosen = ml10m.LAYOUT if ml10m.LAYOUT.marker_file in names else ml1m.LAYOUT
    return _source_in_folder(folder, path, chosen, names)


def resolve_source(path: str, layout: str = AUTO) -> Source:
    """The MovieLens files at `path`: a zip, a folder (or its single subfolder), a ratings file.

    `layout` forces one of LAYOUTS instead of detecting it from the file names (a file named
    other than its layout's ratings file is read in the `::` format unless it ends in .csv).
    """
    if layout != AUTO:
        get_layout(layout)
    path = _local(os.fspath(path))
    if fileio.isdir(path):
        return _resolve_folder(path.rstrip("/"), layout)
    if not fileio.exists(path):
        raise FileNotFoundError(f"MovieLens input {path} does not exist")
    if is_zip(path):
        return _resolve_zip(path, layout)
    return _resolve_file(path, layout)

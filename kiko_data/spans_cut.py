"""`kiko spans`: cut a MovieLens release into time-ordered spans, each a data set of its own.

The release (a zip, a folder or a ratings file, in any layout `kiko.data.movielens` reads) is
cut by the ratings' timestamps into `span-1/`, `span-2/`, ... under the output folder. Each span
holds a ratings file with the release's file name, encoding and format (ratings lines are copied
byte for byte, in the order (timestamp, line in the release); the CSV header and a UTF-8
byte-order mark are repeated at the top of each span's file) and a copy of every side file of
the release (users, movies, links, tags, genres, README...), so each span is read alone, in the
same layout. `spans.json` beside the spans says what each holds.

The ratings file is read once into arrays of (timestamp, line offset, line length), never one
Python object per line kept, then each span's lines are gathered from a memory map of the file,
so a release of ML-25M's size is cut in bounded memory.

This module imports no TensorFlow at import time (`kiko spans --help` answers at once); the
readers, which go through TFX's fileio, are imported when a cut runs.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import posixpath
import re
import shutil
import sys
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from kiko.data.movielens import AUTO, LAYOUT_CHOICES
from kiko.data.movielens.spans import span_dir_name

MANIFEST_FILE = "spans.json"
PERIODS = ("month", "week")
# Not copied into spans: ML-100K's ready-made train/test splits (u1.base ... ub.test) are
# ratings of the whole release, and kiko generate's generator.json describes the whole data set.
_LEFT_OUT = re.compile(r"^(u[1-5ab]\.(base|test)|generator\.json|spans\.json)$")
_SPAN_ENTRY = re.compile(r"^span-\d+(\.zip)?$")
_UTF8_BOM = b"\xef\xbb\xbf"
_WRITE_LINES = 200_000
_COPY_BYTES = 4 << 20
_SECONDS_PER_DAY = 86400


# --- the ratings, as arrays -----------------------------------------------------------------

@dataclass(frozen=True)
class RatingsIndex:
    """Where each rating line of a ratings file is, and its timestamp (line order kept).

    `head` is written at the top of every span's ratings file: the CSV header line (with its
    byte-order mark, if any) or a lone byte-order mark of a file without a header.
    """

    timestamps: np.ndarray  # int64, per rating line, in file order
    starts: np.ndarray  # int64 byte offset of each line (after a byte-order mark)
    lengths: np.ndarray  # int64 bytes of each line without its newline (a `\r` is kept)
    head: bytes


def index_ratings(local_path: str, layout, display_name: str) -> RatingsIndex:
    """Read a ratings file once: each data line's timestamp and byte range.

    Lines are parsed by the layout's own parser (`reading.iter_records`), so a malformed line
    raises the MovieLensFormatError every reader raises (`file:line: reason: 'line'`), named
    after `display_name` (`archive.zip!ml-1m/ratings.dat` for a zip member). Blank lines carry
    no rating and are left out.
    """
    from kiko.data.movielens.files import FileRef
    from kiko.data.movielens.reading import check_not_compressed, iter_records

    ref = FileRef(local_path)
    check_not_compressed(ref)
    stamps, starts, lengths = array("q"), array("q"), array("q")
    position = {"start": 0, "length": 0, "next": 0}
    first_line = []

    def raw_lines():
        for raw in ref.iter_lines():
            position["start"], position["length"] = position["next"], len(raw)
            position["next"] += len(raw) + 1
            if not first_line:
                first_line.append(raw)
            yield raw

    for line_number, _, rating, error in iter_records(
            raw_lines(), layout.parse_rating, layout.ratings_encoding, display_name,
            header=layout.ratings_header):
        if error is not None:
            raise error
        start, length = position["start"], position["length"]
        if line_number == 1 and first_line[0].startswith(_UTF8_BOM):
            start, length = start + len(_UTF8_BOM), length - len(_UTF8_BOM)
        stamps.append(rating.timestamp)
        starts.append(start)
        lengths.append(length)
    head = b""
    if first_line and layout.ratings_header is not None:
        head = first_line[0] + b"\n"
    elif first_line and first_line[0].startswith(_UTF8_BOM):
        head = _UTF8_BOM
    return RatingsIndex(*(np.frombuffer(a, dtype=np.int64) if len(a) else
                          np.zeros(0, dtype=np.int64) for a in (stamps, starts, lengths)),
                        head=head)


# --- where to cut ---------------------------------------------------------------------------

@dataclass(frozen=True)
class SpanPlan:
    """One span: its rating lines (indices into the index, in time order) and its period."""

    lines: np.ndarray
    period: Optional[str] = None  # `2000-05` or `2000-W18` for a cut by month or week


def time_order(timestamps: np.ndarray) -> np.ndarray:
    """Line indices by (timestamp, line order): a stable sort keeps ties in file order."""
    return np.argsort(timestamps, kind="stable")


def plan_by_count(timestamps: np.ndarray, count: int) -> list[SpanPlan]:
    """`count` spans of equal rating counts (to one rating), in time order.

    Ratings with one timestamp may straddle two spans: the counts, not the boundaries, are
    what this cut keeps equal.
    """
    if count < 1:
        raise ValueError(f"the number of spans must be at least 1, got {count}")
    if count > len(timestamps):
        raise ValueError(f"cannot cut {len(timestamps)} ratings into {count} spans: each span "
                         "needs at least one rating")
    return [SpanPlan(lines) for lines in np.array_split(time_order(timestamps), count)]


def period_keys(timestamps: np.ndarray, period: str) -> np.ndarray:
    """Each timestamp's calendar month (months since 1970-01) or ISO week (weeks since the
    Monday 1969-12-29), in UTC."""
    if period == "month":
        return timestamps.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    if period == "week":
        # Day 0 (1970-01-01) is a Thursday: shifting by 3 days puts each Monday on a multiple
        # of 7.
        return (timestamps // _SECONDS_PER_DAY + 3) // 7
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")


def period_label(key: int, period: str) -> str:
    """`2000-05` for a month key; `2000-W18` (ISO year and week) for a week key."""
    if period == "month":
        return str(np.datetime64(int(key), "M"))
    thursday = np.datetime64(int(key) * 7, "D")  # the week's Thursday names its ISO year
    year = thursday.astype("datetime64[Y]")
    week = int((thursday - year.astype("datetime64[D]")).astype(np.int64)) // 7 + 1
    return f"{year}-W{week:02d}"


def plan_by_period(timestamps: np.ndarray, period: str) -> list[SpanPlan]:
    """One span per calendar month or ISO week (UTC) holding ratings, in time order."""
    if not len(timestamps):
        raise ValueError("there are no ratings to cut")
    order = time_order(timestamps)
    keys = period_keys(timestamps[order], period)
    cuts = np.flatnonzero(np.diff(keys)) + 1
    return [SpanPlan(lines, period_label(keys[start], period))
            for lines, start in zip(np.split(order, cuts), np.concatenate([[0], cuts]))]


# --- the manifest ---------------------------------------------------------------------------

def iso_time(timestamp: int) -> str:
    """A Unix timestamp as ISO 8601 in UTC (`2000-04-25T23:05:32Z`)."""
    return f"{np.datetime64(int(timestamp), 's')}Z"


def span_entry(span: int, timestamps: np.ndarray, period: Optional[str] = None, **extra) -> dict:
    """The manifest's record of one span: number, folder, ratings, first and last timestamp."""
    first, last = int(timestamps.min()), int(timestamps.max())
    entry = dict(span=span, folder=span_dir_name(span), ratings=int(len(timestamps)),
                 first_timestamp=first, last_timestamp=last, first=iso_time(first),
                 last=iso_time(last))
    if period is not None:
        entry["period"] = period
    entry.update(extra)
    return entry


def write_manifest(out: Path, manifest: dict) -> Path:
    """`spans.json` in `out`, written through a temporary file and a rename."""
    path = out / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(folder: str | os.PathLike) -> dict:
    """The `spans.json` of a folder of spans."""
    with open(Path(folder) / MANIFEST_FILE, encoding="utf-8") as f:
        return json.load(f)


def check_out(out: Path, force: bool) -> None:
    """Refuse an `out` that is a file, or a non-empty folder unless `force`; create it."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if entries and not force:
        raise ValueError(f"--out {out} is not empty ({', '.join(entries[:5])}"
                         f"{', ...' if len(entries) > 5 else ''}); choose an empty folder, or "
                         "pass --force to replace the spans and spans.json in it")
    out.mkdir(parents=True, exist_ok=True)


def remove_spans(out: Path) -> None:
    """Remove the `span-N` folders and zips and `spans.json` of `out`; other files stay."""
    for path in sorted(out.iterdir()):
        if _SPAN_ENTRY.match(path.name) or path.name == MANIFEST_FILE:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


# --- the release's files --------------------------------------------------------------------

def side_files(source, data: str) -> list:
    """FileRefs of the files to copy into every span: every file beside the ratings file (not
    in subfolders), except ML-100K's train/test splits and generator.json. For a ratings file
    passed alone, only the side files its layout reads (and ML-10M's tags.dat)."""
    from tfx.dsl.io import fileio

    from kiko.data.movielens.files import FileRef, basename, join, parent

    ratings = source.ratings
    if ratings.member is not None:  # a zip: the members in the ratings file's folder
        import zipfile
        folder = posixpath.dirname(ratings.member)
        with fileio.open(ratings.path, "rb") as f:
            names = [n for n in zipfile.ZipFile(f).namelist() if not n.endswith("/")
                     and posixpath.dirname(n) == folder]
        refs = [FileRef(ratings.path, name) for name in names]
    elif fileio.isdir(data):
        folder = parent(ratings.path)
        refs = [FileRef(join(folder, name.rstrip("/"))) for name in fileio.listdir(folder)
                if not fileio.isdir(join(folder, name.rstrip("/")))]
    else:
        marker = source.layout.marker_file
        refs = list(source.files[1:])
        if marker and fileio.exists(join(parent(ratings.path), marker)):
            refs.append(FileRef(join(parent(ratings.path), marker)))
    return sorted((ref for ref in refs if ref.name != ratings.name
                   and not _LEFT_OUT.match(basename(ref.name))), key=lambda ref: ref.name)


def local_copy(ref, scratch: str) -> str:
    """A local plain file with `ref`'s bytes: the file itself when it is one, else a copy
    (a zip member is decompressed once; a remote file is downloaded once)."""
    from tfx.dsl.io import fileio

    from kiko.data.movielens.files import stage

    if ref.member is not None:
        return stage(ref, scratch).path
    if "://" not in ref.path:
        return ref.path
    target = os.path.join(scratch, ref.name)
    with fileio.open(ref.path, "rb") as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_BYTES)
    return target


def write_span_ratings(path: Path, memory, index: RatingsIndex, lines: np.ndarray) -> None:
    """The span's ratings file: `index.head`, then its lines byte for byte, each ending in
    `\\n` (a last line of the release without one gets it)."""
    starts, ends = index.starts[lines], index.starts[lines] + index.lengths[lines]
    with open(path, "wb") as out:
        out.write(index.head)
        for block in range(0, len(lines), _WRITE_LINES):
            out.write(b"".join(memory[start:end] + b"\n" for start, end in zip(
                starts[block:block + _WRITE_LINES].tolist(),
                ends[block:block + _WRITE_LINES].tolist())))


# --- the cut --------------------------------------------------------------------------------

def cut(data: str, out: str | os.PathLike, count: Optional[int] = None,
        by: Optional[str] = None, layout: str = AUTO, force: bool = False) -> dict:
    """Cut the release at `data` into spans under `out` (`count` equal spans, or one per
    calendar `by` = month | week); return the manifest written to `out/spans.json`."""
    from kiko.data.movielens.source import resolve_source

    if (count is None) == (by is None):
        raise ValueError("give either a number of spans (count) or a period (by), not both")
    source = resolve_source(data, layout)
    side = side_files(source, data)
    out = Path(out).resolve()
    check_out(out, force)
    ratings_name = source.layout.ratings_file
    with tempfile.TemporaryDirectory(prefix=".spans-partial-", dir=out) as partial:
        local = local_copy(source.ratings, os.path.join(partial, "_ratings"))
        index = index_ratings(local, source.layout, source.ratings.display_name)
        if not len(index.timestamps):
            raise ValueError(f"{source.ratings.display_name} holds no ratings to cut")
        plans = (plan_by_count(index.timestamps, count) if count is not None
                 else plan_by_period(index.timestamps, by))
        side_dir = os.path.join(partial, "_side")
        side_local = [local_copy(ref, side_dir) if ref.member is not None or "://" in ref.path
                      else ref.path for ref in side]
        entries = []
        with open(local, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as memory:
            for number, plan in enumerate(plans, 1):
                folder = Path(partial) / span_dir_name(number)
                folder.mkdir()
                write_span_ratings(folder / ratings_name, memory, index, plan.lines)
                for ref, path in zip(side, side_local):
                    shutil.copyfile(path, folder / ref.name)
                entries.append(span_entry(number, index.timestamps[plan.lines], plan.period))
        remove_spans(out)  # only now: a failed cut leaves the old spans as they were
        for number in range(1, len(plans) + 1):
            os.replace(Path(partial) / span_dir_name(number), out / span_dir_name(number))
    manifest = dict(
        source=dict(data=data if "://" in data else os.path.abspath(data), layout=source.layout.name, release=source.release,
                    ratings_file=source.ratings.display_name, ratings=int(len(index.timestamps))),
        cut=dict(by="count", count=count) if count is not None else dict(by=by),
        side_files=[ref.name for ref in side], spans=entries)
    write_manifest(out, manifest)
    return manifest


def describe(manifest: dict, out: str) -> str:
    """What a cut wrote, one line per span."""
    source = manifest["source"]
    lines = [f"Cut {source['ratings']:,} ratings of {source['data']} (layout "
             f"{source['layout']}) into {len(manifest['spans'])} spans in {out}:"]
    for entry in manifest["spans"]:
        period = f" ({entry['period']})" if "period" in entry else ""
        lines.append(f"  {entry['folder']}{period}: {entry['ratings']:,} ratings, "
                     f"{entry['first']} .. {entry['last']}")
    lines.append("Side files in every span: " + (", ".join(manifest["side_files"]) or "none")
                 + f". Manifest: {os.path.join(out, MANIFEST_FILE)}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: `kiko spans --data RELEASE --out DIR (--count N | --by month|week)`."""
    parser = argparse.ArgumentParser(
        prog="kiko spans",
        description="Cut a MovieLens release (zip, folder or ratings file; any layout) into "
                    "time-ordered spans DIR/span-1, DIR/span-2, ..., each in the release's "
                    "layout with its file names, encoding and line format: the ratings lines "
                    "are copied byte for byte, ordered by (timestamp, line in the release), "
                    "the CSV header repeated in each span. Every other file beside the ratings "
                    "file (users, movies, links, genres, README, and the tag files: ML-10M's "
                    "tags.dat and tags.csv are side files, copied whole, not cut by time) is "
                    "copied into every span, so each span reads alone; ML-100K's u1.base ... "
                    "ub.test splits and generator.json are left out. Blank lines are dropped; a "
                    "malformed ratings line is an error naming file:line. Writes "
                    "DIR/spans.json: per span its number, ratings, first and last timestamp "
                    "(ISO, UTC) and the source.")
    parser.add_argument("--data", required=True, help="the release: a zip, a folder or a "
                                                      "ratings file")
    parser.add_argument("--out", required=True,
                        help="local folder for the spans: absent or empty (see --force)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--count", type=int, metavar="N",
                     help="N spans of equal rating counts (ratings with one timestamp may fall "
                          "on both sides of a cut)")
    how.add_argument("--by", choices=PERIODS,
                     help="one span per calendar month or ISO week (UTC) that has ratings, "
                          "numbered from 1 in time order")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default=AUTO,
                        help="the release's layout (default: detected from the file names)")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --out: its span-N folders and zips and "
                             "spans.json are replaced, other files are kept")
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    from kiko.data.movielens import MovieLensFormatError

    try:
        manifest = cut(args.data, args.out, count=args.count, by=args.by, layout=args.layout,
                       force=args.force)
    except (MovieLensFormatError, ValueError, FileNotFoundError) as error:
        print(f"kiko spans: error: {error}", file=sys.stderr)
        return 1
    print(describe(manifest, os.path.abspath(args.out)))
    return 0

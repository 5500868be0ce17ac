"""The data-quality report of MovieLensExampleGen: assembled from what each input split's passes
counted, recorded on the Examples artifact, and checked.

Per input split, the launcher writes `<input>.source.json` (files, layout, side files) and the
passes `<input>.stats.json` (the ratings file's counts) into QUALITY_DIR; after the Beam pipeline
they merge into QUALITY_FILE and the artifact's custom properties. A run whose output lost
examples, has an empty split, or rejected too many lines fails (DataCheckError).
"""

import concurrent.futures
import json
import os
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2

from kiko.components.movielens_example_gen import outputs, quality
from kiko.components.movielens_example_gen.errors import DataCheckError
from kiko.components.movielens_example_gen.inputs import input_name
from kiko.components.movielens_example_gen.options import Options
from kiko.data.movielens.files import join
from kiko.data.movielens.reading import SideFile
from kiko.data.movielens.source import Source
from kiko.model import features as fk

DUPLICATE_POLICY = (
    "ratings of the same user and movie: the one with the latest timestamp is kept (on a tie, "
    "the later line); the others are dropped and listed")


def write_lines(path: str, lines: List[str]) -> None:
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def _read_json(path: str) -> dict:
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


# --- per input split --------------------------------------------------------------------------

def stats_json(stats: quality.ChunkStats) -> str:
    """The ratings file's share of the report (counters become histograms)."""
    return json.dumps({
        "lines_read": stats.lines_read, "blank_lines": stats.blank_lines,
        "examples": stats.examples, "rejected_lines": stats.rejected,
        "duplicates_exact": stats.duplicates_exact,
        "duplicates_conflicting": stats.duplicates_conflicting,
        "ratings_without_user": stats.without_user,
        "ratings_without_movie": stats.without_movie, "bom": stats.bom,
        "users": len(stats.user_counts), "movies": len(stats.movie_counts),
        "rating_histogram": quality.rating_histogram(stats.rating_counts),
        "ratings_per_user": quality.histogram(stats.user_counts.values()),
        "ratings_per_movie": quality.histogram(stats.movie_counts.values()),
        "extremes": {key: extreme.__dict__ for key, extreme in sorted(stats.extremes.items())},
    }, sort_keys=True)


def _side_report(side: Optional[SideFile], numeric: Dict[str, str]) -> Optional[dict]:
    """A side file's share of the report; `numeric` maps feature keys to record fields."""
    if side is None:
        return None
    extremes = {}
    ids = list(side.records)
    for key, name in numeric.items():
        values = [getattr(side.records[i], name) for i in ids]
        present = [(v, side.line_of[i]) for v, i in zip(values, ids) if v is not None]
        extreme = quality.extreme_of(np.asarray([v for v, _ in present]),
                                     np.asarray([n for _, n in present]), side.ref.display_name)
        if extreme is not None:
            extremes[key] = extreme.__dict__
    return {"file": side.ref.display_name, "lines_read": side.lines_read,
            "records": len(side.records), "rejected_lines": len(side.rejected),
            "bom": side.facts.bom, "extremes": extremes}


def source_json(split_pattern: str, source: Source, users: Optional[SideFile],
                movies: Optional[SideFile], bytes_read: int) -> str:
    """What an input split reads: its files, layout and encodings, its side files, and the
    bytes of the files it parses (ratings and side files; uncompressed for zip members)."""
    layout = source.layout
    return json.dumps({
        "input": split_pattern, "layout": layout.name, "release": source.release,
        "bytes_read": int(bytes_read),
        "encoding": layout.ratings_encoding, "side_encoding": layout.side_encoding,
        "files": {"ratings": source.ratings.display_name,
                  "users": source.users.display_name if source.users else None,
                  "movies": source.movies.display_name if source.movies else None},
        "side_files": {"users": _side_report(users, {fk.AGE: "age"}),
                       "movies": _side_report(movies, {fk.YEAR: "year"})},
    }, sort_keys=True)


# --- over the whole execution -----------------------------------------------------------------

@tf.autograph.experimental.do_not_convert
def _add_batch(total, batch):
    return total + tf.cast(tf.shape(batch)[0], tf.int64)


def _count_file(path: str) -> int:
    dataset = tf.data.TFRecordDataset(path, compression_type="GZIP").batch(65536)
    return int(dataset.reduce(np.int64(0), _add_batch).numpy())


def count_records(split_uri: str) -> int:
    """Records in the gzip TFRecord files of one split folder (what was really written).

    Files are counted in parallel threads (decompression runs outside the GIL).
    """
    files = sorted(fileio.glob(join(split_uri, "*.gz")))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return sum(pool.map(_count_file, files))


def _sum_reports(inputs: List[dict]) -> dict:
    """One report over the input splits (usually one): counts add up, the first names files."""
    report = dict(inputs[0])
    for key in ("bytes_read", "lines_read", "blank_lines", "examples", "rejected_lines",
                "duplicates_exact", "duplicates_conflicting", "ratings_without_user",
                "ratings_without_movie"):
        report[key] = sum(r[key] for r in inputs)
    report["bom"] = any(r["bom"] or any((s or {}).get("bom") for s in r["side_files"].values())
                        for r in inputs)
    if len(inputs) > 1:
        report["inputs"] = inputs
    return report


def _drop_empty_files(folder: str) -> bool:
    """Remove the empty files of `folder` (and the folder if nothing is left); anything left?"""
    if not fileio.exists(folder):
        return False
    for name in fileio.listdir(folder):
        if fileio.stat(join(folder, name)).length == 0:
            fileio.remove(join(folder, name))
    if fileio.listdir(folder):
        return True
    fileio.rmtree(folder)
    return False


def build(uri: str, input_config: example_gen_pb2.Input, written: Dict[str, int]) -> dict:
    """The report of the Examples artifact at `uri`, `written` records per split, also
    written to its QUALITY_FILE."""
    quality_dir = join(uri, outputs.QUALITY_DIR)
    inputs = []
    for split in input_config.splits:
        name = input_name(split.pattern)
        inputs.append({**_read_json(join(quality_dir, f"{name}.source.json")),
                       **_read_json(join(quality_dir, f"{name}.stats.json"))})
    report = _sum_reports(inputs)
    report["examples_per_split"] = written
    report["examples_written"] = sum(written.values())
    for key, folder in (("rejected_path", outputs.REJECTED_DIR),
                        ("duplicates_path", outputs.DUPLICATES_DIR)):
        path = join(uri, folder)
        report[key] = path if _drop_empty_files(path) else None
    report["duplicate_policy"] = DUPLICATE_POLICY
    write_lines(join(quality_dir, outputs.QUALITY_FILE), [json.dumps(report, indent=1,
                                                                     sort_keys=True)])
    return report


def record(examples: types.Artifact, report: dict) -> None:
    """The report and its main counts as custom properties of the Examples artifact."""
    examples.set_string_custom_property(outputs.DATA_QUALITY_PROPERTY,
                                        json.dumps(report, sort_keys=True))
    examples.set_string_custom_property(outputs.LAYOUT_PROPERTY, report["layout"])
    for prop, key in ((outputs.REJECTED_LINES_PROPERTY, "rejected_lines"),
                      (outputs.LINES_READ_PROPERTY, "lines_read"),
                      (outputs.DUPLICATES_EXACT_PROPERTY, "duplicates_exact"),
                      (outputs.DUPLICATES_CONFLICTING_PROPERTY, "duplicates_conflicting"),
                      (outputs.WITHOUT_USER_PROPERTY, "ratings_without_user"),
                      (outputs.WITHOUT_MOVIE_PROPERTY, "ratings_without_movie")):
        examples.set_int_custom_property(prop, int(report[key]))


def check(report: dict, options: Options) -> None:
    """Fail on lost examples, an empty split or too many rejected lines (DataCheckError)."""
    where = (f" (the rejected lines are in {report['rejected_path']})"
             if report.get("rejected_path") else "")
    read = (f"{report['lines_read']} lines read, {report['rejected_lines']} rejected, "
            f"{report['duplicates_exact'] + report['duplicates_conflicting']} duplicates "
            f"dropped{where}")
    if report["examples_written"] != report["examples"]:
        raise DataCheckError(
            f"the runner lost examples: {report['examples']} were parsed but "
            f"{report['examples_written']} written ({report['examples_per_split']}); "
            "the Beam runner in use dropped data, so the run stops here")
    empty = [split for split, n in report["examples_per_split"].items() if n == 0]
    if empty:
        raise DataCheckError(
            f"no examples in split(s) {', '.join(empty)} of {report['files']['ratings']}: "
            f"{read}")
    limit = options.max_rejected_fraction
    files = [("ratings", report["lines_read"], report["rejected_lines"])] + [
        (kind, side["lines_read"], side["rejected_lines"])
        for kind, side in report["side_files"].items() if side]
    for kind, lines, rejected in files:
        if lines and rejected / lines > limit:
            name = report["files"][kind]
            raise DataCheckError(
                f"{rejected} of {lines} lines of {name} rejected ({rejected / lines:.1%}, "
                f"more than --max-rejected-fraction {limit:g}): is it in the "
                f"{report['layout']} layout?{where}")

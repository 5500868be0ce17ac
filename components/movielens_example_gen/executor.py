"""Beam executor of MovieLensExampleGen: any MovieLens layout to tf.Examples, streaming.

Per input split:

1. In the launcher: find the files and the layout, read the side files (users, movies: small)
   line by line, decompress a zipped ratings file once into the output folder, and cut the
   ratings file into byte ranges from its size alone.
2. Pass 1, in parallel per range: count lines (for exact line numbers) and write the packed keys
   of the valid ratings (user, movie, timestamp, rating, position: 40 bytes) to a key file in
   the staging folder, ordered by bucket of (user, movie). Then, in parallel per bucket, the
   bucket's slice of every key file is read and searched (quality.duplicate_losers); only the
   duplicates travel on. The keys do not go through a GroupByKey: the DirectRunner holds a
   shuffle's data in its runner process and copies it (measured at 25M ratings: +4.3 GB).
3. Pass 2, in parallel per range: parse and encode every line, naming `file:line` on errors,
   dropping and listing the duplicates, counting what it saw (quality.ChunkStats).

No process reads a whole file, and examples are written by the workers without a global
shuffle (TFX's WriteSplit reshuffles, which makes the DirectRunner hold every example in
memory). After the pipeline the written records are counted per split: a run whose output
lost examples, has an empty split, or rejected too many lines fails instead of completing.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import apache_beam as beam
import numpy as np
import tensorflow as tf
from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components._tfx_internal import (
    BaseExampleGenExecutor, examples_utils, generate_output_split_names, write_split)
from components.movielens_example_gen import options as opts
from components.movielens_example_gen import quality, spec
from components.movielens_example_gen.example_encoder import RatingEncoder
from kiko_data.movielens import get_layout
from kiko_data.movielens.files import (
    Chunk, join, plan_chunks, read_chunk_lines, stage)
from kiko_data.movielens.reading import (
    HeaderError, LineFacts, SideFile, check_header, check_not_compressed, iter_records,
    read_side_file)
from kiko_data.movielens.source import Source, resolve_source
from kiko_model import features as fk

REJECTED_TAG = "rejected"
DUPLICATES_TAG = "duplicates"
STATS_TAG = "stats"
LINES_TAG = "lines"
_MIN_CHUNK_BYTES = 256 << 10
_MAX_CHUNK_BYTES = 8 << 20
_CHUNKS_PER_FILE = 32
_BUCKET_TEXT_BYTES = 32 << 20  # ratings text per duplicate bucket (~1.3M keys, ~50 MB)
_MAX_BUCKETS = 1024
_KEYS_DIR = "_keys"
_STAGING_DIR = "_staging"
_PROGRESS_DIR = "_progress"
WHOLE_INPUT_BASE = "."  # the split pattern naming input_base itself


class MalformedLineError(ValueError):
    """A malformed line: `file:line: reason: 'line'`."""


class DataCheckError(RuntimeError):
    """The examples cannot be trusted: lost by the runner, an empty split, too many rejects."""


@dataclass(frozen=True)
class Options:
    """custom_config of the component, with defaults."""

    malformed_lines: str = opts.MALFORMED_FAIL
    max_rejected_fraction: float = opts.DEFAULT_MAX_REJECTED_FRACTION
    layout: str = "auto"

    @property
    def skip_malformed(self) -> bool:
        return self.malformed_lines == opts.MALFORMED_SKIP

    @classmethod
    def from_exec_properties(cls, exec_properties: Mapping[str, Any]) -> "Options":
        text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
        if not text:
            return cls()
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(text, config)
        values = struct_pb2.Struct()
        config.custom_config.Unpack(values)
        fields = json_format.MessageToDict(values)
        return cls(**{key: fields[key] for key in (opts.MALFORMED_LINES_KEY,
                                                   opts.MAX_REJECTED_FRACTION_KEY,
                                                   opts.LAYOUT_KEY) if key in fields})


def chunk_bytes(size: int) -> int:
    """Bytes per unit of parallel work: ~32 ranges per file, 256 KiB to 8 MiB each (a range
    takes a few seconds, so its progress line comes often enough)."""
    return min(_MAX_CHUNK_BYTES, max(_MIN_CHUNK_BYTES, size // _CHUNKS_PER_FILE))


def duplicate_buckets(size: int) -> int:
    """Buckets of the duplicate search for a ratings file of `size` bytes: one per 32 MiB of
    text, so a bucket's keys stay ~50 MB whatever the file's size."""
    return min(_MAX_BUCKETS, max(1, -(-size // _BUCKET_TEXT_BYTES)))


def input_name(split_pattern: str) -> str:
    """A file-name-safe name of an input split pattern (for its report files)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in split_pattern)


def resolve_pattern(input_base: str, split_pattern: str, layout: str) -> Source:
    """The data set an input split's pattern names (one zip, folder or ratings file)."""
    if split_pattern == WHOLE_INPUT_BASE:
        return resolve_source(input_base, layout)
    matches = sorted(fileio.glob(join(input_base, split_pattern)))
    if len(matches) != 1:
        raise ValueError(
            f"split pattern {split_pattern!r} under {input_base} must match exactly one "
            f"ratings file, folder or zip, matched {len(matches)}: {matches[:5]}")
    return resolve_source(matches[0], layout)


# --- pass 1: line counts and duplicate keys ------------------------------------------------

def _numbering_base(chunk: Chunk) -> int:
    """Line numbers of pass 1 are relative to the range; line 1 (BOM, header) only at 0."""
    return 1 if chunk.start == 0 else 2


class _KeyFile(NamedTuple):
    """Pass 1's keys of one range: records [offsets[b], offsets[b + 1]) are bucket b's."""

    chunk: int
    path: str
    offsets: Tuple[int, ...]


class _ScanKeys(beam.DoFn):
    """Counts the range's lines and writes the keys of its valid ratings, ordered by bucket."""

    def __init__(self, layout_name: str, path: str, progress_dir: str, keys_dir: str,
                 buckets: int):
        self._layout_name = layout_name
        self._path = path
        self._progress_dir = progress_dir
        self._keys_dir = keys_dir
        self._buckets = buckets

    def process(self, chunk: Chunk):
        layout = get_layout(self._layout_name)
        lines = read_chunk_lines(chunk)
        n_lines = len(lines)
        yield beam.pvalue.TaggedOutput(LINES_TAG, (chunk.index, n_lines))
        base = _numbering_base(chunk)
        keys = []
        for line_number, _, rating, _ in _one_argument_errors(iter_records(
                lines, layout.parse_rating, layout.ratings_encoding, self._path, base,
                header=layout.ratings_header)):
            if rating is not None:
                keys.append((rating.user_id, rating.movie_id, rating.timestamp, rating.rating,
                             chunk.index, line_number - base))
        del lines
        if keys:
            packed = np.array(keys, dtype=quality.KEY_DTYPE)
            del keys
            bucket = quality.bucket_of(packed["user"], packed["movie"], self._buckets)
            order = np.argsort(bucket, kind="stable")
            offsets = np.concatenate([[0], np.cumsum(np.bincount(bucket,
                                                                 minlength=self._buckets))])
            path = join(self._keys_dir, f"{chunk.index:06d}.keys")
            with fileio.open(path, "wb") as f:  # rewritten whole if Beam retries the range
                f.write(packed[order].tobytes())
            yield _KeyFile(chunk.index, path, tuple(offsets.tolist()))
        _Progress.done(self._progress_dir, _Progress.SCANNED, chunk.index, n_lines)


def _find_duplicates(bucket: int, key_files: List[_KeyFile]):
    """Duplicates among one bucket's keys, read from every range's key file."""
    size = quality.KEY_DTYPE.itemsize
    parts = []
    for key_file in key_files:
        low, high = key_file.offsets[bucket], key_file.offsets[bucket + 1]
        if high > low:
            with fileio.open(key_file.path, "rb") as f:
                f.seek(low * size)
                parts.append(np.frombuffer(f.read((high - low) * size), dtype=quality.KEY_DTYPE))
    if not parts:
        return
    for loser in quality.duplicate_losers(np.concatenate(parts)):
        yield loser.chunk, loser


def _first_lines(counts: List[tuple]) -> Dict[int, int]:
    """Chunk index -> line number of its first line, from (index, number of lines) pairs."""
    first, line = {}, 1
    for index, n in sorted(counts):
        first[index] = line
        line += n
    return first


# --- pass 2: examples -------------------------------------------------------------------------

@dataclass(frozen=True)
class _ParseSettings:
    layout_name: str
    path: str  # of the original ratings file (archive!member for a zip), for messages
    skip_malformed: bool
    as_proto: bool
    check_users: bool
    check_movies: bool
    n_chunks: int
    progress_dir: str  # each finished range leaves a small file there (see _Progress)


class _ParseChunk(beam.DoFn):
    """Parses a byte range into serialized tf.Examples, counting what it sees.

    Malformed lines fail the run with `file:line: reason`, or, when skipping, go to the
    REJECTED_TAG output and are counted; duplicates found by pass 1 go to DUPLICATES_TAG; the
    range's statistics go to STATS_TAG.
    """

    def __init__(self, settings: _ParseSettings, users: Optional[Mapping],
                 movies: Optional[Mapping]):
        self._settings = settings
        self._users = users
        self._movies = movies
        self._encoder: Optional[RatingEncoder] = None

    def setup(self):
        self._encoder = RatingEncoder(self._users, self._movies)

    def process(self, chunk: Chunk, first_lines: Dict[int, int], losers):
        started = time.perf_counter()
        s = self._settings
        layout = get_layout(s.layout_name)
        first = first_lines[chunk.index]
        dropped = {loser.line: loser for loser in losers[chunk.index]}
        facts = LineFacts()
        stats = quality.ChunkStats()
        encode, knows = self._encoder.encode, self._encoder.knows
        columns: Dict[str, list] = {fk.USER_ID: [], fk.MOVIE_ID: [], fk.RATING: [],
                                    fk.TIMESTAMP: []}
        line_numbers, user_known, movie_known = [], [], []
        records = iter_records(read_chunk_lines(chunk), layout.parse_rating,
                               layout.ratings_encoding, s.path, first,
                               header=layout.ratings_header, facts=facts)
        for line_number, text, rating, error in _one_argument_errors(records):
            stats.lines_read += 1
            if error is not None:
                if not s.skip_malformed:
                    # One-argument error: Beam rebuilds errors from args[0] to add the step.
                    raise MalformedLineError(str(error))
                stats.rejected += 1
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, str(error))
                continue
            loser = dropped.get(line_number - first)
            if loser is not None:
                if loser.kind == quality.EXACT:
                    stats.duplicates_exact += 1
                else:
                    stats.duplicates_conflicting += 1
                kept = first_lines[loser.kept_chunk] + loser.kept_line
                yield beam.pvalue.TaggedOutput(DUPLICATES_TAG, (
                    f"{s.path}:{line_number}: {loser.kind} duplicate of line {kept} (user "
                    f"{rating.user_id}, movie {rating.movie_id}); line {kept} is kept: {text!r}"))
                continue
            for key, value in zip(columns, rating):
                columns[key].append(value)
            line_numbers.append(line_number)
            has_user, has_movie = knows(rating)
            user_known.append(has_user)
            movie_known.append(has_movie)
            serialized = encode(rating)
            yield tf.train.Example.FromString(serialized) if s.as_proto else serialized
        stats.blank_lines, stats.bom = facts.blank_lines, facts.bom
        stats.add_examples({key: np.asarray(values) for key, values in columns.items()},
                           np.asarray(line_numbers, dtype=np.int64), s.path,
                           np.asarray(user_known, dtype=bool), np.asarray(movie_known, dtype=bool),
                           s.check_users, s.check_movies)
        logging.info("MovieLensExampleGen: range %d/%d of %s (lines %d-%d): %d examples, "
                     "%d rejected, %d duplicates in %.1f s", chunk.index + 1, s.n_chunks, s.path,
                     first, first + max(stats.lines_read + stats.blank_lines, 1) - 1,
                     stats.examples, stats.rejected,
                     stats.duplicates_exact + stats.duplicates_conflicting,
                     time.perf_counter() - started)
        _Progress.done(s.progress_dir, _Progress.PARSED, chunk.index, stats.examples)
        yield beam.pvalue.TaggedOutput(STATS_TAG, stats)


class _Progress:
    """Progress of the workers, seen from the launcher through the shared output folder.

    Beam's runners report nothing while a stage runs, and worker log lines do not reach the
    console: every finished range leaves a small file (`<kind>-<range>` holding a count) in
    the input split's progress folder, and a thread of the launcher sums them every 10 s.
    """

    SCANNED, PARSED, TOTAL = "scanned", "parsed", "total"
    EVERY_S = 10.0

    @staticmethod
    def done(folder: str, kind: str, index: int, count: int) -> None:
        with fileio.open(join(folder, f"{kind}-{index}"), "w") as f:
            f.write(str(count))

    def __init__(self, root: str):
        self._root = root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *unused):
        self._stop.set()
        self._thread.join()
        if fileio.exists(self._root):
            fileio.rmtree(self._root)

    def summary(self) -> Optional[str]:
        if not fileio.exists(self._root):
            return None
        totals = {"total": 0, "scanned": 0, "parsed": 0, "examples": 0, "lines": 0}
        for folder in fileio.listdir(self._root):
            folder = join(self._root, folder.rstrip("/"))
            for name in fileio.listdir(folder):
                kind = name.split("-", 1)[0]
                with fileio.open(join(folder, name), "r") as f:
                    count = int(f.read() or 0)
                if kind == self.TOTAL:
                    totals["total"] += count
                else:
                    totals[kind] += 1
                    totals["examples" if kind == self.PARSED else "lines"] += count
        if not totals["total"]:
            return None
        return (f"MovieLensExampleGen: {totals['scanned']}/{totals['total']} ranges scanned "
                f"({totals['lines']:,} lines), {totals['parsed']}/{totals['total']} parsed "
                f"({totals['examples']:,} examples)")

    def _report(self):
        while not self._stop.wait(self.EVERY_S):
            try:
                line = self.summary()
            except (OSError, ValueError):  # a file being written: next time
                continue
            if line:
                logging.info(line)


def _one_argument_errors(records):
    """The records, a header error re-raised as MalformedLineError (Beam rebuilds exceptions
    from args[0] to add the step's name, which garbles a MovieLensFormatError's fields)."""
    try:
        yield from records
    except HeaderError as error:
        raise MalformedLineError(str(error)) from None


class _MergeStats(beam.CombineFn):
    def create_accumulator(self):
        return quality.ChunkStats()

    def add_input(self, accumulator, stats):
        return accumulator.merge(stats)

    def merge_accumulators(self, accumulators):
        merged = quality.ChunkStats()
        for accumulator in accumulators:
            merged.merge(accumulator)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _stats_json(stats: quality.ChunkStats) -> str:
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


# --- the input transform ----------------------------------------------------------------------

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


def _write_lines(path: str, lines: List[str]) -> None:
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(Union[bytes, tf.train.Example])
def _MovieLensToExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any],
                        split_pattern: str, examples_uri: str) -> beam.pvalue.PCollection:
    """Reads one input split's data set (any layout) as tf.Examples; see the module docstring."""
    options = Options.from_exec_properties(exec_properties)
    source = resolve_pattern(exec_properties[standard_component_specs.INPUT_BASE_KEY],
                             split_pattern, options.layout)
    layout = source.layout
    logging.info("MovieLensExampleGen: %s", source.describe())
    name = input_name(split_pattern)
    for ref in source.files:
        check_not_compressed(ref)
    check_header(source.ratings, layout.ratings_header, layout.ratings_encoding)
    users = (read_side_file(source.users, layout, "users", options.skip_malformed)
             if source.users else None)
    movies = (read_side_file(source.movies, layout, "movies", options.skip_malformed)
              if source.movies else None)
    side_rejects = [line for side in (users, movies) if side for line in side.rejected]
    if side_rejects:
        _write_lines(join(join(examples_uri, spec.REJECTED_DIR), f"{name}.side_files.txt"),
                     side_rejects)
    ratings = stage(source.ratings, join(join(examples_uri, _STAGING_DIR), name))
    size = ratings.size()
    chunks = plan_chunks(ratings.path, size, chunk_bytes(size))
    logging.info("MovieLensExampleGen: %s: %d bytes in %d ranges", source.ratings.display_name,
                 size, len(chunks))
    progress_dir = join(join(examples_uri, _PROGRESS_DIR), name)
    fileio.makedirs(progress_dir)
    _Progress.done(progress_dir, _Progress.TOTAL, 0, len(chunks))
    quality_dir = join(examples_uri, spec.QUALITY_DIR)
    _write_lines(join(quality_dir, f"{name}.source.json"), [json.dumps({
        "input": split_pattern, "layout": layout.name, "release": source.release,
        "encoding": layout.ratings_encoding, "side_encoding": layout.side_encoding,
        "files": {"ratings": source.ratings.display_name,
                  "users": source.users.display_name if source.users else None,
                  "movies": source.movies.display_name if source.movies else None},
        "side_files": {"users": _side_report(users, {fk.AGE: "age"}),
                       "movies": _side_report(movies, {fk.YEAR: "year"})},
    }, sort_keys=True)])

    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY],
                              output_config)
    settings = _ParseSettings(
        layout_name=layout.name, path=source.ratings.display_name,
        skip_malformed=options.skip_malformed,
        # TFX partitions by a feature only for tf.Example protos; by bytes otherwise.
        as_proto=output_config.split_config.HasField("partition_feature_name"),
        check_users=users is not None, check_movies=movies is not None, n_chunks=len(chunks),
        progress_dir=progress_dir)

    buckets = duplicate_buckets(size)
    keys_dir = join(join(join(examples_uri, _STAGING_DIR), name), _KEYS_DIR)
    fileio.makedirs(keys_dir)
    ranges = pipeline | "Ranges" >> beam.Create(chunks, reshuffle=True)
    scanned = ranges | "ScanKeys" >> beam.ParDo(_ScanKeys(
        layout.name, settings.path, progress_dir, keys_dir, buckets)).with_outputs(
        LINES_TAG, main="key_files")
    first_lines = (scanned[LINES_TAG] | "CollectLineCounts" >> beam.combiners.ToList()
                   | "FirstLines" >> beam.Map(_first_lines))
    # A side input: every range is scanned before any bucket is searched.
    losers = (pipeline | "Buckets" >> beam.Create(range(buckets), reshuffle=True)
              | "FindDuplicates" >> beam.FlatMap(
                  _find_duplicates, key_files=beam.pvalue.AsList(scanned["key_files"])))
    parsed = ranges | "Parse" >> beam.ParDo(
        _ParseChunk(settings, users.records if users else None,
                    movies.records if movies else None),
        first_lines=beam.pvalue.AsSingleton(first_lines),
        losers=beam.pvalue.AsMultiMap(losers),
    ).with_outputs(REJECTED_TAG, DUPLICATES_TAG, STATS_TAG, main="examples")
    for tag, folder in ((REJECTED_TAG, spec.REJECTED_DIR), (DUPLICATES_TAG, spec.DUPLICATES_DIR)):
        _ = parsed[tag] | f"Write{tag.title()}" >> beam.io.WriteToText(
            join(join(examples_uri, folder), f"{name}.txt"), shard_name_template="")
    _ = (parsed[STATS_TAG] | "MergeStats" >> beam.CombineGlobally(_MergeStats())
         | "StatsJson" >> beam.Map(_stats_json)
         | "WriteStats" >> beam.io.WriteToText(join(quality_dir, f"{name}.stats.json"),
                                               shard_name_template=""))
    return parsed["examples"]


# --- writing and checking ---------------------------------------------------------------------

@beam.ptransform_fn
def _WriteSplit(examples: beam.pvalue.PCollection, split_uri: str) -> beam.pvalue.PDone:
    """TFX's WriteSplit without its global Reshuffle: each worker writes what it parsed."""
    return (examples
            | "MaybeSerialize" >> beam.ParDo(write_split.MaybeSerialize())
            | "Write" >> beam.io.WriteToTFRecord(
                join(split_uri, write_split.DEFAULT_TF_RECORD_FILE_NAME), file_name_suffix=".gz"))


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


def _read_json(path: str) -> dict:
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def _sum_reports(inputs: List[dict]) -> dict:
    """One report over the input splits (usually one): counts add up, the first names files."""
    report = dict(inputs[0])
    for key in ("lines_read", "blank_lines", "examples", "rejected_lines", "duplicates_exact",
                "duplicates_conflicting", "ratings_without_user", "ratings_without_movie"):
        report[key] = sum(r[key] for r in inputs)
    report["bom"] = any(r["bom"] or any((s or {}).get("bom") for s in r["side_files"].values())
                        for r in inputs)
    if len(inputs) > 1:
        report["inputs"] = inputs
    return report


class Executor(BaseExampleGenExecutor):
    """ExampleGen executor whose input source is MovieLens data in any layout."""

    _examples_uri: str = ""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return functools.partial(_MovieLensToExample, examples_uri=self._examples_uri)

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        """BaseExampleGenExecutor.Do with an unshuffled write, then the data checks."""
        self._log_startup(input_dict, output_dict, exec_properties)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        self._examples_uri = examples.uri
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        split_names = generate_output_split_names(input_config, output_config)
        examples.split_names = artifact_utils.encode_split_names(split_names)
        options = Options.from_exec_properties(exec_properties)

        started = time.perf_counter()
        try:
            with _Progress(join(examples.uri, _PROGRESS_DIR)), \
                    self._make_beam_pipeline() as pipeline:
                for split, example_split in self.GenerateExamplesByBeam(
                        pipeline, exec_properties).items():
                    _ = example_split | f"WriteSplit[{split}]" >> _WriteSplit(
                        artifact_utils.get_split_uri([examples], split))
        finally:
            staging = join(examples.uri, _STAGING_DIR)
            if fileio.exists(staging):
                fileio.rmtree(staging)
        examples_utils.set_payload_format(
            examples, exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY,
                                          example_gen_pb2.FORMAT_TF_EXAMPLE))
        examples_utils.set_file_format(
            examples, write_split.to_file_format_str(example_gen_pb2.FORMAT_TFRECORDS_GZIP))
        written = {split: count_records(artifact_utils.get_split_uri([examples], split))
                   for split in split_names}
        report = self._report(examples.uri, input_config, written)
        _record(examples, report)
        logging.info("MovieLensExampleGen: %d examples (%s) from %d lines in %.1f s; "
                     "%d rejected, %d duplicates dropped", report["examples"],
                     ", ".join(f"{k} {v}" for k, v in written.items()), report["lines_read"],
                     time.perf_counter() - started, report["rejected_lines"],
                     report["duplicates_exact"] + report["duplicates_conflicting"])
        check(report, options)

    @staticmethod
    def _report(uri: str, input_config: example_gen_pb2.Input, written: Dict[str, int]) -> dict:
        quality_dir = join(uri, spec.QUALITY_DIR)
        inputs = []
        for split in input_config.splits:
            name = input_name(split.pattern)
            inputs.append({**_read_json(join(quality_dir, f"{name}.source.json")),
                           **_read_json(join(quality_dir, f"{name}.stats.json"))})
        report = _sum_reports(inputs)
        report["examples_per_split"] = written
        report["examples_written"] = sum(written.values())
        for key, folder in (("rejected_path", spec.REJECTED_DIR),
                            ("duplicates_path", spec.DUPLICATES_DIR)):
            path = join(uri, folder)
            report[key] = path if _drop_empty_files(path) else None
        report["duplicate_policy"] = (
            "ratings of the same user and movie: the one with the latest timestamp is kept (on "
            "a tie, the later line); the others are dropped and listed")
        _write_lines(join(quality_dir, spec.QUALITY_FILE), [json.dumps(report, indent=1,
                                                                       sort_keys=True)])
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


def _record(examples: types.Artifact, report: dict) -> None:
    """The report and its main counts as custom properties of the Examples artifact."""
    examples.set_string_custom_property(spec.DATA_QUALITY_PROPERTY,
                                        json.dumps(report, sort_keys=True))
    examples.set_string_custom_property(spec.LAYOUT_PROPERTY, report["layout"])
    for prop, key in ((spec.REJECTED_LINES_PROPERTY, "rejected_lines"),
                      (spec.LINES_READ_PROPERTY, "lines_read"),
                      (spec.DUPLICATES_EXACT_PROPERTY, "duplicates_exact"),
                      (spec.DUPLICATES_CONFLICTING_PROPERTY, "duplicates_conflicting"),
                      (spec.WITHOUT_USER_PROPERTY, "ratings_without_user"),
                      (spec.WITHOUT_MOVIE_PROPERTY, "ratings_without_movie")):
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
            name = (report["files"][kind])
            raise DataCheckError(
                f"{rejected} of {lines} lines of {name} rejected ({rejected / lines:.1%}, "
                f"more than --max-rejected-fraction {limit:g}): is it in the "
                f"{report['layout']} layout?{where}")

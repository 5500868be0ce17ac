"""ExampleGen's whole-range (column) parsing gives what line-by-line parsing gives, on every
layout, and hands any range with a line it does not take to the line-by-line path."""

import collections
import dataclasses
import pathlib

import numpy as np
import pytest

from kiko.components.movielens_example_gen import passes, quality
from kiko.components.movielens_example_gen.errors import MalformedLineError
from kiko.components.movielens_example_gen.example_encoder import RatingEncoder
from kiko.components.movielens_example_gen.report import stats_json
from kiko.data import synthetic
from kiko.data.movielens import LAYOUTS, Rating
from kiko.data.movielens.columns import parse_rating_columns
from kiko.data.movielens.files import plan_chunks
from kiko.data.movielens.reading import read_side_file
from kiko.data.movielens.source import resolve_source

RANGES = 7


@pytest.fixture(scope="module")
def data_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("column_layouts")
    return {name: synthetic.generate(root / name.replace("-", "_"), synthetic.GeneratorConfig.small(
        seed=11, layout=name)) for name in LAYOUTS}


def run_passes(folder, tmp_path, skip_malformed=False, by_lines=False, monkeypatch=None):
    """ScanKeys, the duplicate search and ParseChunk over RANGES ranges, as the executor
    composes them; returns (examples, rejected, duplicates, stats per range)."""
    if by_lines:
        monkeypatch.setattr(passes, "plain_columns", lambda *args: None)
    source = resolve_source(str(folder))
    layout = source.layout
    sides = {kind: read_side_file(ref, layout, kind, skip_malformed).records
             for kind, ref in (("users", source.users), ("movies", source.movies)) if ref}
    path = source.ratings.path
    size = source.ratings.size()
    chunks = plan_chunks(path, size, -(-size // RANGES))
    work = tmp_path / ("lines" if by_lines else "columns")
    work.mkdir()
    scan = passes.ScanKeys(layout.name, path, str(work), str(work), 3)
    counts, key_files = [], []
    for chunk in chunks:
        for out in scan.process(chunk):
            (counts.append(out.value) if hasattr(out, "tag") else key_files.append(out))
    losers = collections.defaultdict(list)
    for bucket in range(3):
        for index, loser in passes.find_duplicates(bucket, key_files):
            losers[index].append(loser)
    settings = passes.ParseSettings(layout.name, path, skip_malformed, False,
                                    "users" in sides, "movies" in sides, len(chunks), str(work))
    parse = passes.ParseChunk(settings, sides.get("users"), sides.get("movies"))
    parse.setup()
    examples, outputs = [], collections.defaultdict(list)
    first = passes.first_line_numbers(counts)
    for chunk in chunks:
        for out in parse.process(chunk, first, losers):
            (outputs[out.tag].append(out.value) if hasattr(out, "tag") else examples.append(out))
    if by_lines:
        monkeypatch.undo()
    return (examples, outputs[passes.REJECTED_TAG], outputs[passes.DUPLICATES_TAG],
            outputs[passes.STATS_TAG])


def without_path_flag(stats):
    return [dataclasses.replace(s, column_ranges=0) for s in stats]


def copy_of(data_set, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for item in pathlib.Path(data_set.out_dir).iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    return folder


def add_duplicates(folder, layout):
    """Appends an exact and a conflicting duplicate of the first two ratings."""
    path = folder / LAYOUTS[layout].ratings_file
    lines = path.read_bytes().splitlines(keepends=True)
    data = lines[1:3] if LAYOUTS[layout].ratings_header else lines[0:2]
    sep = LAYOUTS[layout].ratings_separator.encode()
    user, movie, rating, stamp = data[1].rstrip(b"\n").split(sep)
    other = b"1" if rating != b"1" else b"2"
    with open(path, "ab") as f:
        f.write(data[0] + sep.join([user, movie, other, stamp]) + b"\n")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_columns_give_the_examples_and_stats_of_line_parsing(data_sets, tmp_path, monkeypatch,
                                                             layout):
    folder = copy_of(data_sets[layout], tmp_path)
    add_duplicates(folder, layout)
    fast = run_passes(folder, tmp_path)
    slow = run_passes(folder, tmp_path, by_lines=True, monkeypatch=monkeypatch)
    assert fast[0] == slow[0]  # the same bytes, in the same order
    assert len(fast[0]) == data_sets[layout].n_ratings
    assert fast[1] == slow[1] == []
    assert fast[2] == slow[2] and len(fast[2]) == 2
    assert [s.column_ranges for s in fast[3]] == [1] * RANGES
    assert [s.column_ranges for s in slow[3]] == [0] * RANGES
    assert without_path_flag(fast[3]) == without_path_flag(slow[3])
    merged = [passes.MergeStats().extract_output(
        passes.MergeStats().merge_accumulators(stats)) for stats in (fast[3], slow[3])]
    assert stats_json(merged[0]) == stats_json(merged[1])
    assert merged[0].duplicates_exact == merged[0].duplicates_conflicting == 1


# (layout, line written in place of a good one); each is not plain, bad or not.
ODD_LINES = [
    ("ml-1m", b"5::12::3.3::978300760", "rating '3.3' cannot be stored exactly"),
    ("ml-1m", b"5::12::4", "expected 4 fields separated by '::', got 3"),
    ("ml-1m", b"5x::12::4::978300760", "UserID '5x' is not an integer"),
    ("ml-1m", b"5::12\t::4::978300760", "MovieID '12\\t' is not an integer"),
    ("ml-1m", b"5::12:::4::978300760", "rating ':4' is not a number"),
    ("ml-1m", b"5::12::4.50::978300760", None),  # valid, just not MovieLens' spelling
    ("ml-1m", b"5::12::7::978300760", None),  # out of range: the schema's job, kept
    ("ml-1m", b"  ", None),  # a blank line
    ("ml-1m", b"5::12::4::978300760\r", None),  # a CRLF line end
    ("ml-1m", b"5::12::4::9783007601234567890", "timestamp 9783007601234567890 is larger"),
    ("ml-100k", b"5\t12\t4", "expected 4 fields separated by '\\t', got 3"),
    ("ml-100k", b"5\t-12\t4\t978300760", "MovieID -12 is negative"),
    ("ml-10m", b"5::12::nan::978300760", "rating 'nan' is not a number"),
    ("ml-csv", b'"5",12,4.5,978300760', None),  # a quoted field
    ("ml-csv", b"5,12,4.5,", "empty timestamp"),
]


def _replace_line(folder, layout, number, text):
    path = folder / LAYOUTS[layout].ratings_file
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = text
    path.write_bytes(b"\n".join(lines))
    return str(path)


@pytest.mark.parametrize("layout, line, reason", ODD_LINES)
def test_a_range_with_an_odd_line_is_parsed_line_by_line(data_sets, tmp_path, monkeypatch,
                                                        layout, line, reason):
    folder = copy_of(data_sets[layout], tmp_path)
    number = 150
    path = _replace_line(folder, layout, number, line)
    skip = reason is not None
    fast = run_passes(folder, tmp_path, skip_malformed=skip)
    slow = run_passes(folder, tmp_path, skip_malformed=skip, by_lines=True,
                      monkeypatch=monkeypatch)
    assert fast[:3] == slow[:3]
    assert without_path_flag(fast[3]) == without_path_flag(slow[3])
    assert [s.column_ranges for s in fast[3]].count(0) == 1  # only the odd line's range
    if reason is not None:
        assert fast[1] == [slow[1][0]] and fast[1][0].startswith(f"{path}:{number}: {reason}")
        strict = tmp_path / "strict"
        strict.mkdir()
        with pytest.raises(MalformedLineError, match=f"^{path}:{number}: "):
            run_passes(folder, strict)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_file_without_a_final_newline_is_parsed_whole(data_sets, tmp_path, monkeypatch,
                                                        layout):
    folder = copy_of(data_sets[layout], tmp_path)
    ratings = folder / LAYOUTS[layout].ratings_file
    ratings.write_bytes(ratings.read_bytes().rstrip(b"\n"))
    fast = run_passes(folder, tmp_path)
    slow = run_passes(folder, tmp_path, by_lines=True, monkeypatch=monkeypatch)
    assert fast[0] == slow[0] and len(fast[0]) == data_sets[layout].n_ratings
    assert [s.column_ranges for s in fast[3]] == [1] * RANGES


def test_header_and_bom_decide_the_first_range():
    header = "userId,movieId,rating,timestamp"
    plain = parse_rating_columns(f"{header}\n1,2,3.5,4\n10,20,5,40".encode(), ",", header, True)
    assert plain.skipped == 1 and plain.rating.tolist() == [3.5, 5.0]
    assert plain.user_id.tolist() == [1, 10] and plain.timestamp.tolist() == [4, 40]
    assert parse_rating_columns(b"\xef\xbb\xbf1::2::3::4\n", "::", None, True) is None
    assert parse_rating_columns(b'"userId",movieId,rating,timestamp\n1,2,3,4\n', ",",
                                header, True) is None  # a quoted header: the line parser's
    assert len(parse_rating_columns(b"", "\t", None, False)) == 0


def test_column_encoding_is_the_encoder_bytes():
    rng = np.random.default_rng(5)
    n = 3000
    users, movies = rng.integers(0, 400, n), rng.integers(0, 300, n)
    ratings, stamps = rng.integers(0, 11, n) / 2, rng.integers(0, 2 ** 63 - 1, n)
    stamps[:50] = rng.integers(0, 200, 50)
    encoder = RatingEncoder()
    assert encoder.encode_columns(users, movies, ratings, stamps) == [
        encoder.encode(Rating(*row)) for row in zip(users.tolist(), movies.tolist(),
                                                    ratings.tolist(), stamps.tolist())]


def test_merged_stats_count_the_ranges_parsed_whole():
    merged = quality.ChunkStats(column_ranges=2).merge(quality.ChunkStats(column_ranges=1))
    assert merged.column_ranges == 3

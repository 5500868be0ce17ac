"""MovieLensExampleGen's executor, driver and component, run in-process without an orchestrator."""

import glob
import json
import os
import random
import re
import shutil
import uuid
import zipfile

import apache_beam as beam
import pytest
import tensorflow as tf
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from kiko.components.movielens_example_gen import executor, outputs, passes
from kiko.components.movielens_example_gen.component import (
    MovieLensExampleGen, locate_input, make_input_config, make_output_config)
from kiko.components.movielens_example_gen.driver import content_fingerprint
from kiko.components.movielens_example_gen.errors import DataCheckError
from kiko.components.movielens_example_gen.example_encoder import RatingEncoder
from kiko.components.movielens_example_gen.options import (
    MALFORMED_SKIP, PARTITION_BY_USER, Options)
from kiko.components.movielens_example_gen.report import check, count_records
from kiko.data import synthetic
from kiko.data.movielens import Movie, Rating, User
from kiko.data.movielens.reading import read_ratings, read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.model import features as fk
from kiko.pipeline import configs
from tests.conftest import run_example_gen

LAYOUT_FOLDERS = {"ml-100k": "ml-100k", "ml-1m": "ml-1m", "ml-10m": "ml-10M100K",
                  "ml-csv": "ml-25m"}


def read_split(examples, split):
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
    assert files, f"no files for split {split}"
    return [bytes(r.numpy()) for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def all_examples(examples):
    return [tf.train.Example.FromString(s) for split in
            artifact_utils.decode_split_names(examples.split_names)
            for s in read_split(examples, split)]


def values(example: tf.train.Example, key: str):
    feature = example.features.feature[key]
    kind = feature.WhichOneof("kind")
    return list(getattr(feature, kind).value) if kind else []


def rating_of(example) -> Rating:
    return Rating(*(values(example, k)[0] for k in
                    (fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP)))


def quality(examples) -> dict:
    return json.loads(examples.get_string_custom_property(outputs.DATA_QUALITY_PROPERTY))


def run_on(folder, out, **options):
    base, pattern = locate_input(resolve_source(str(folder), options.get("layout", "auto")))
    return run_example_gen(base, out, input_config=make_input_config({"single_split": pattern}),
                           **options)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    return {layout: synthetic.generate(root / folder, synthetic.GeneratorConfig.small(
        seed=9, layout=layout)) for layout, folder in LAYOUT_FOLDERS.items()}


def test_default_split_is_nine_to_one_and_loses_nothing(small_movielens, small_examples):
    assert artifact_utils.decode_split_names(small_examples.split_names) == ["train", "eval"]
    train, eval_ = read_split(small_examples, "train"), read_split(small_examples, "eval")
    assert len(train) + len(eval_) == small_movielens.n_ratings
    assert len(eval_) / small_movielens.n_ratings == pytest.approx(0.1, abs=0.015)
    report = quality(small_examples)
    assert report["examples_per_split"] == {"train": len(train), "eval": len(eval_)}
    assert report["lines_read"] == report["examples"] == small_movielens.n_ratings
    assert (report["layout"], report["release"], report["encoding"]) == (
        "ml-1m", "ml-1m", "latin-1")
    for prop in (outputs.REJECTED_LINES_PROPERTY, outputs.DUPLICATES_EXACT_PROPERTY,
                 outputs.DUPLICATES_CONFLICTING_PROPERTY, outputs.WITHOUT_USER_PROPERTY,
                 outputs.WITHOUT_MOVIE_PROPERTY):
        assert small_examples.get_int_custom_property(prop) == 0, prop
    assert small_examples.get_int_custom_property(outputs.LINES_READ_PROPERTY) == \
        small_movielens.n_ratings
    assert sum(report["ratings_per_user"]["counts"]) == small_movielens.n_users
    assert sum(report["rating_histogram"].values()) == small_movielens.n_ratings


def test_split_membership_is_identical_across_runs(small_movielens, small_examples, tmp_path):
    again = run_on(small_movielens.out_dir, tmp_path / "again")
    for split in ("train", "eval"):
        assert sorted(read_split(again, split)) == sorted(read_split(small_examples, split))


def test_examples_hold_exactly_the_file_and_its_side_features(small_movielens, small_examples):
    source = resolve_source(small_movielens.out_dir)
    users, movies = read_side_records(source, "users"), read_side_records(source, "movies")
    examples = all_examples(small_examples)
    assert sorted(rating_of(e) for e in examples) == sorted(read_ratings(source))
    for example in examples[:300]:
        user = users[values(example, fk.USER_ID)[0]]
        movie = movies[values(example, fk.MOVIE_ID)[0]]
        assert values(example, fk.GENDER) == [user.gender.encode()]
        assert values(example, fk.AGE) == [user.age]
        assert values(example, fk.OCCUPATION) == [user.occupation.encode()]
        assert values(example, fk.ZIP_PREFIX) == [user.zip_code[:fk.ZIP_PREFIX_LENGTH].encode()]
        assert values(example, fk.TITLE) == [movie.title.encode("utf-8")]
        assert values(example, fk.GENRES) == [g.encode() for g in movie.genres]
        assert values(example, fk.YEAR) == ([movie.year] if movie.year else [])


@pytest.mark.parametrize("layout, user_features", [
    ("ml-100k", True), ("ml-1m", True), ("ml-10m", False), ("ml-csv", False)])
def test_every_layout_becomes_the_same_examples(layouts, tmp_path, layout, user_features):
    report = layouts[layout]
    examples = run_on(report.out_dir, tmp_path / "out")
    got = all_examples(examples)
    source = resolve_source(report.out_dir)
    assert sorted(rating_of(e) for e in got) == sorted(read_ratings(source))
    assert len(got) == report.n_ratings
    ratings = {values(e, fk.RATING)[0] for e in got}
    assert ratings == set(report.rating_histogram)  # half stars intact where the layout has them
    assert all((fk.GENDER in e.features.feature) == user_features for e in got)
    assert all(fk.GENRES in e.features.feature for e in got)
    movies = read_side_records(source, "movies")
    titles = {values(e, fk.MOVIE_ID)[0]: values(e, fk.TITLE)[0].decode("utf-8") for e in got}
    assert all(titles[m] == movies[m].title for m in titles)
    if layout in ("ml-10m", "ml-csv"):  # UTF-8 releases: no mojibake
        assert any("千と千尋の神隠し" in t or "Амели" in t for t in titles.values())
    assert quality(examples)["layout"] == layout


def test_zip_input_is_read_and_its_staging_copy_removed(small_movielens, tmp_path):
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in (small_movielens.ratings_path, small_movielens.users_path,
                     small_movielens.movies_path):
            zf.write(path, f"ml-1m/{os.path.basename(path)}")
    examples = run_on(archive, tmp_path / "out")
    assert len(all_examples(examples)) == small_movielens.n_ratings
    assert fk.GENDER in all_examples(examples)[0].features.feature
    assert quality(examples)["files"]["ratings"] == f"{archive}!ml-1m/ratings.dat"
    assert not os.path.exists(tmp_path / "out" / "_staging")


def test_input_on_a_non_local_filesystem(layouts, tmp_path):
    report = layouts["ml-csv"]
    root = f"ram://kiko-{uuid.uuid4().hex}/ml-25m"
    for name in os.listdir(report.out_dir):
        with open(os.path.join(report.out_dir, name), "rb") as f, \
                fileio.open(f"{root}/{name}", "wb") as out:
            out.write(f.read())
    examples = run_on(root, tmp_path / "out")
    assert len(all_examples(examples)) == report.n_ratings
    assert quality(examples)["files"]["ratings"] == f"{root}/ratings.csv"


def test_partition_by_user_keeps_each_user_in_one_split(small_movielens, tmp_path):
    base, pattern = locate_input(resolve_source(small_movielens.out_dir))
    examples = run_example_gen(base, tmp_path, input_config=make_input_config(
        {"single_split": pattern}), output_config=make_output_config(
        {"train": 4, "eval": 1}, partition_by=PARTITION_BY_USER))
    users = {}
    for split in ("train", "eval"):
        for serialized in read_split(examples, split):
            users.setdefault(values(tf.train.Example.FromString(serialized), fk.USER_ID)[0],
                             set()).add(split)
    assert all(len(splits) == 1 for splits in users.values())
    assert 0.1 < sum(1 for s in users.values() if s == {"eval"}) / len(users) < 0.3


def test_predefined_split_files(small_movielens, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with open(small_movielens.ratings_path, encoding="latin-1") as f:
        lines = f.readlines()
    (data / "train_ratings.dat").write_text("".join(lines[:7000]), encoding="latin-1")
    (data / "eval_ratings.dat").write_text("".join(lines[7000:]), encoding="latin-1")
    examples = run_example_gen(data, tmp_path / "out", input_config=make_input_config(
        {"train": "train_ratings.dat", "eval": "eval_ratings.dat"}))
    train, eval_ = read_split(examples, "train"), read_split(examples, "eval")
    assert (len(train), len(eval_)) == (7000, len(lines) - 7000)
    keys = set(tf.train.Example.FromString(train[0]).features.feature)
    assert keys == {fk.USER_ID, fk.MOVIE_ID, fk.RATING, fk.TIMESTAMP}
    assert quality(examples)["lines_read"] == len(lines) and len(quality(examples)["inputs"]) == 2


def _folder(tmp_path, ratings_lines, name="ratings.dat", side=None):
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"".join(line + b"\n" for line in ratings_lines))
    for file_name, lines in (side or {}).items():
        (folder / file_name).write_bytes(b"".join(line + b"\n" for line in lines))
    return folder


def test_duplicates_keep_the_latest_and_are_listed(tmp_path, monkeypatch):
    lines = [b"%d::%d::4::%d" % (u, m, 1000 + u * 10 + m) for u in range(1, 21)
             for m in range(1, 11)]
    lines += [b"3::4::4::1034",      # exact duplicate of line 24 (same rating and time)
              b"5::6::2::999999",    # conflicting, later: kept instead of line 46
              b"7::8::1::1",         # conflicting, earlier: dropped
              b"7::8::5::1"]         # conflicting, earlier: dropped
    random.Random(4).shuffle(lines)  # duplicates far apart, in different byte ranges
    folder = _folder(tmp_path, lines)
    # Small ranges and buckets, so duplicates meet across key files and buckets are many.
    monkeypatch.setattr(passes, "MIN_CHUNK_BYTES", 256)
    monkeypatch.setattr(passes, "BUCKET_TEXT_BYTES", 1024)
    size = os.path.getsize(folder / "ratings.dat")
    assert size // passes.chunk_bytes(size) >= 8 and passes.duplicate_buckets(size) >= 3
    examples = run_on(folder, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out" / "_staging")  # the key files are gone
    report = quality(examples)
    assert (report["duplicates_exact"], report["duplicates_conflicting"]) == (1, 3)
    assert report["lines_read"] == report["examples"] + 4 == len(lines)
    got = {(r.user_id, r.movie_id): r for r in map(rating_of, all_examples(examples))}
    assert len(got) == 200 and got[(5, 6)].rating == 2.0 and got[(7, 8)].timestamp == 1078
    listed = open(os.path.join(report["duplicates_path"], "ratings.dat.txt")).read().splitlines()
    assert len(listed) == 4
    assert all(f"{folder}/ratings.dat:" in line and "duplicate of line" in line
               for line in listed)
    assert sum("conflicting" in line for line in listed) == 3
    assert examples.get_int_custom_property(outputs.DUPLICATES_CONFLICTING_PROPERTY) == 3


def test_missing_side_records_are_counted(tmp_path):
    lines = [b"%d::%d::3::%d" % (u, m, u * m) for u in range(1, 21) for m in range(1, 11)]
    folder = _folder(tmp_path, lines, side={
        "users.dat": [b"%d::F::1::10::48067" % u for u in range(1, 19)],
        "movies.dat": [b"%d::A (1990)::Drama" % m for m in range(1, 10)]})
    examples = run_on(folder, tmp_path / "out")
    report = quality(examples)
    assert (report["ratings_without_user"], report["ratings_without_movie"]) == (20, 20)
    assert examples.get_int_custom_property(outputs.WITHOUT_USER_PROPERTY) == 20
    assert report["side_files"]["users"]["records"] == 18


def test_multi_processing_runner_gives_the_same_examples(small_movielens, small_examples,
                                                         tmp_path):
    """Byte ranges parsed by separate worker processes: same examples, same line numbers."""
    base, pattern = locate_input(resolve_source(small_movielens.out_dir))
    examples = run_example_gen(
        base, tmp_path, input_config=make_input_config({"single_split": pattern}),
        beam_pipeline_args=configs.beam_pipeline_args(workers=2))  # what the runners pass
    for split in ("train", "eval"):
        assert sorted(read_split(examples, split)) == sorted(read_split(small_examples, split))
    assert quality(examples)["extremes"] == quality(small_examples)["extremes"]


def test_duplicate_buckets_grow_with_the_file_and_are_capped():
    assert passes.duplicate_buckets(0) == passes.duplicate_buckets(10 << 20) == 1
    assert passes.duplicate_buckets(700 << 20) == 22  # about the size of ML-25M's ratings.csv
    assert passes.duplicate_buckets(1 << 50) == passes.MAX_BUCKETS


# --- the checks after writing -------------------------------------------------------------------

def _report(**overrides):
    report = {"examples": 10, "examples_written": 10, "examples_per_split": {"train": 9,
              "eval": 1}, "lines_read": 10, "rejected_lines": 0, "duplicates_exact": 0,
              "duplicates_conflicting": 0, "rejected_path": None, "layout": "ml-1m",
              "files": {"ratings": "r.dat", "users": None, "movies": None},
              "side_files": {"users": None, "movies": None}}
    report.update(overrides)
    return report


def test_check_fails_on_lost_examples_empty_splits_and_rejects():
    check(_report(), Options())
    with pytest.raises(DataCheckError, match="the runner lost examples: 10 were parsed but 7 "
                                             "written"):
        check(_report(examples_written=7, examples_per_split={"train": 7, "eval": 0}), Options())
    with pytest.raises(DataCheckError, match=r"no examples in split\(s\) eval of r.dat: 10 lines "
                                             "read, 0 rejected"):
        check(_report(examples_per_split={"train": 10, "eval": 0}), Options())
    with pytest.raises(DataCheckError, match=r"2 of 10 lines of r.dat rejected \(20.0%, more "
                                             r"than --max-rejected-fraction 0.1\).*in /x"):
        check(_report(rejected_lines=2, rejected_path="/x"), Options(max_rejected_fraction=0.1))
    check(_report(rejected_lines=2), Options(max_rejected_fraction=0.2))


class _DropFirstOfBundle(beam.DoFn):
    """A runner that loses data: the first element of every bundle never reaches the sink."""

    def start_bundle(self):
        self._seen = False

    def process(self, element):
        if self._seen:
            yield element
        self._seen = True


def test_run_that_loses_examples_fails(tmp_path, monkeypatch):
    """A real ExampleGen run whose split writer drops examples fails after the write."""
    lines = [b"%d::%d::4::%d" % (u, m, u * 100 + m) for u in range(1, 21) for m in range(1, 11)]
    write_split = executor._WriteSplit

    @beam.ptransform_fn
    def lossy_write(examples, split_uri):
        return examples | beam.ParDo(_DropFirstOfBundle()) | write_split(split_uri)

    monkeypatch.setattr(executor, "_WriteSplit", lossy_write)
    out = tmp_path / "out"
    with pytest.raises(DataCheckError, match=r"the runner lost examples: (\d+) were parsed but "
                                             r"(\d+) written") as failure:
        run_on(_folder(tmp_path, lines), out)
    parsed, written = map(int, re.search(r"(\d+) were parsed but (\d+)",
                                         str(failure.value)).groups())
    on_disk = sum(count_records(split) for split in glob.glob(str(out / "Split-*")))
    assert parsed == len(lines) and written == on_disk < parsed


def test_count_records_counts_what_is_on_disk(small_examples, small_movielens):
    total = sum(count_records(artifact_utils.get_split_uri([small_examples], split))
                for split in ("train", "eval"))
    assert total == small_movielens.n_ratings
    assert count_records("/nonexistent/Split-x") == 0


# --- options, fingerprint and encoder ----------------------------------------------------------

def test_component_options_travel_in_custom_config():
    options = Options(MALFORMED_SKIP, 0.25, "ml-csv", code_version="0123abcd")
    component = MovieLensExampleGen(input_base="/data", options=options)
    assert Options.from_exec_properties(component.exec_properties) == options
    assert Options.from_exec_properties({}) == Options()
    with pytest.raises(ValueError, match="malformed_lines"):
        Options(malformed_lines="ignore")
    with pytest.raises(ValueError, match="max_rejected_fraction"):
        Options(max_rejected_fraction=2)
    with pytest.raises(ValueError, match="layout"):
        Options(layout="ml-2m")
    with pytest.raises(ValueError, match="partition_by"):
        make_output_config(partition_by="movie")
    with pytest.raises(ValueError, match="positive"):
        make_output_config({"train": 9, "eval": 0})


@pytest.mark.parametrize("changed", ["ratings.dat", "users.dat", "movies.dat"])
def test_fingerprint_follows_the_content_of_every_file(small_movielens, tmp_path, changed):
    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    input_config = make_input_config({"single_split": "ratings.dat"})
    before = content_fingerprint(str(data), input_config, "auto")
    path = data / changed
    stat = os.stat(path)
    content = path.read_bytes()
    # Same size, same modification time, one character different.
    index = content.index(b"::") - 1
    edited = content[:index] + (b"7" if content[index:index + 1] != b"7" else b"8") + \
        content[index + 1:]
    path.write_bytes(edited)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = content_fingerprint(str(data), input_config, "auto")
    assert before != after
    assert f"{path}:sha256=" in after and after.count("sha256=") == 3


def test_encoder_writes_deterministic_serialization():
    rng = random.Random(3)
    users = {u: User(u, rng.choice("MF"), rng.choice([1, 18, 56]), rng.choice(["writer", "other"]),
                     f"{rng.randrange(100000):05d}") for u in range(1, 50)}
    movies = {m: Movie(m, f"Misérables, Les (Part {m}) (19{m % 90 + 10})",
                       None if m % 5 == 0 else 1900 + m, ("Drama", "Children's")[: 1 + m % 2])
              for m in range(1, 60)}
    encoder = RatingEncoder(users, movies)
    for _ in range(500):
        rating = Rating(rng.randrange(1, 60), rng.randrange(1, 70),
                        rng.choice([0.5, 1.0, 3.5, 5.0, 7.0]), rng.randrange(0, 2 ** 63 - 1))
        serialized = encoder.encode(rating)
        example = tf.train.Example.FromString(serialized)
        assert example.SerializeToString(deterministic=True) == serialized
        assert rating_of(example) == rating
        assert (fk.GENDER in example.features.feature) == (rating.user_id in users)
        assert (fk.GENRES in example.features.feature) == (rating.movie_id in movies)
        assert encoder.knows(rating) == (rating.user_id in users, rating.movie_id in movies)


def test_malformed_line_fails_with_file_line_and_reason(small_movielens, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_movielens.out_dir, data)
    lines = (data / "ratings.dat").read_bytes().splitlines(keepends=True)
    lines.insert(4321, b"12::34::five::978300760\n")
    (data / "ratings.dat").write_bytes(b"".join(lines))
    with pytest.raises(Exception, match=r"ratings\.dat:4322: rating 'five' is not a number"):
        run_on(data, tmp_path / "out")

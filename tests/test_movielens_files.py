"""Finding MovieLens data (every layout; zip, folder, file; any filesystem) and reading it in
byte ranges."""

from __future__ import annotations

import hashlib
import io
import random
import re
import uuid
import zipfile
from pathlib import Path

import pytest
from tfx.dsl.io import fileio

from kiko.data import synthetic
from kiko.data.movielens import ml100k, ml10m, ml1m, mlcsv
from kiko.data.movielens.files import (
    Chunk, FileRef, plan_chunks, read_chunk_lines, stage)
from kiko.data.movielens.reading import read_side_file
from kiko.data.movielens.source import Source, resolve_source

LAYOUT_NAMES = ("ml-100k", "ml-1m", "ml-10m", "ml-csv")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A tiny data set of every layout, in a folder named after a release of that layout."""
    root = tmp_path_factory.mktemp("layouts")
    folders = {"ml-100k": "ml-100k", "ml-1m": "ml-1m", "ml-10m": "ml-10M100K",
               "ml-csv": "ml-25m"}
    return {layout: synthetic.generate(root / folders[layout], synthetic.GeneratorConfig.small(
        seed=5, layout=layout)) for layout in LAYOUT_NAMES}


# --- byte ranges -------------------------------------------------------------------------------

CHUNK_DATA = [
    b"", b"1::1::5::1\n", b"1::1::5::1", b"a\nb\nc\nd\ne\n", b"a\nb\nc\nd\ne",
    b"a\r\n\nb\r\n\n\nc\n", b"\n\n\n", "Mis\xe9rables\nx\x85y\n".encode("latin-1"),
    b"".join(b"%d::%d::4::%d\n" % (i, i * 7, 10 ** 9 + i) for i in range(500)),
]


@pytest.mark.parametrize("data", CHUNK_DATA)
@pytest.mark.parametrize("target", [1, 2, 3, 7, 64, 10 ** 6])
def test_ranges_read_every_line_exactly_once(tmp_path, data, target):
    path = tmp_path / "r.dat"
    path.write_bytes(data)
    chunks = plan_chunks(str(path), len(data), target)
    assert chunks[0].start == 0 and chunks[-1].end == len(data)
    assert all(a.end == b.start for a, b in zip(chunks, chunks[1:]))
    expected = data.split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert [line for c in chunks for line in read_chunk_lines(c)] == expected


def test_ranges_on_random_files(tmp_path):
    rng = random.Random(11)
    for trial in range(30):
        lines = [bytes(rng.choice(b"ab:\r\t") for _ in range(rng.randrange(0, 12)))
                 for _ in range(rng.randrange(0, 40))]
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        path = tmp_path / f"f{trial}"
        path.write_bytes(data)
        target = rng.randrange(1, 30)
        got = [line for c in plan_chunks(str(path), len(data), target)
               for line in read_chunk_lines(c)]
        expected = data.split(b"\n")
        if expected[-1] == b"":
            expected.pop()
        assert got == expected, (data, target)


def test_plan_chunks_rejects_zero_target():
    with pytest.raises(ValueError, match="target_bytes"):
        plan_chunks("x", 10, 0)
    assert plan_chunks("x", 0, 5) == [Chunk(0, "x", 0, 0)]


# --- files and zip members ---------------------------------------------------------------------

def test_file_ref_streams_hashes_and_stages_zip_members(tmp_path, generated):
    ratings = Path(generated["ml-1m"].ratings_path)
    data = ratings.read_bytes()
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(ratings, "ml-1m/ratings.dat")
    for ref in (FileRef(str(ratings)), FileRef(str(archive), "ml-1m/ratings.dat")):
        assert ref.size() == len(data) and ref.name == "ratings.dat"
        assert b"\n".join(ref.iter_lines()) + b"\n" == data
        assert ref.sha256() == hashlib.sha256(data).hexdigest()
        assert ref.head(3) == data[:3]
    member = FileRef(str(archive), "ml-1m/ratings.dat")
    assert member.display_name == f"{archive}!ml-1m/ratings.dat"
    staged = stage(member, str(tmp_path / "staging"))
    assert staged.member is None and Path(staged.path).read_bytes() == data
    assert stage(FileRef(str(ratings)), str(tmp_path / "unused")) == FileRef(str(ratings))


# --- finding the data --------------------------------------------------------------------------

@pytest.mark.parametrize("layout, release, side", [
    ("ml-100k", "ml-100k", ("u.user", "u.item")),
    ("ml-1m", "ml-1m", ("users.dat", "movies.dat")),
    ("ml-10m", "ml-10m", (None, "movies.dat")),
    ("ml-csv", "ml-25m", (None, "movies.csv")),
])
def test_every_layout_is_detected_in_its_folder(generated, layout, release, side):
    folder = Path(generated[layout].out_dir)
    source = resolve_source(str(folder))
    assert (source.layout_name, source.release) == (layout, release)
    assert source.ratings.path == generated[layout].ratings_path
    assert [ref.name if ref else None for ref in (source.users, source.movies)] == list(side)
    assert f"MovieLens layout {layout} ({release};" in source.describe()


def test_zip_with_a_top_folder_and_nested_folder(tmp_path, generated):
    folder = Path(generated["ml-csv"].out_dir)
    archive = tmp_path / "ml-25m.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for f in folder.iterdir():
            out.write(f, f"ml-25m/{f.name}")
    source = resolve_source(str(archive))
    assert source == Source("ml-csv", "ml-25m", FileRef(str(archive), "ml-25m/ratings.csv"),
                            None, FileRef(str(archive), "ml-25m/movies.csv"))
    side = read_side_file(source.movies, source.layout, "movies", skip_malformed=False)
    assert len(side.records) == generated["ml-csv"].n_movies
    parent = tmp_path / "download"
    parent.mkdir()
    (parent / "ml-1m").symlink_to(Path(generated["ml-1m"].out_dir))
    assert resolve_source(str(parent)).layout_name == "ml-1m"


def test_bare_ratings_files_and_forced_layouts(tmp_path, generated):
    folder = Path(generated["ml-10m"].out_dir)
    assert resolve_source(str(folder / "ratings.dat")).layout_name == "ml-10m"  # tags.dat beside
    own = tmp_path / "own"
    own.mkdir()
    (own / "train_ratings.dat").write_bytes(b"1::2::3::4\n")
    (own / "users.dat").write_bytes(b"1::F::1::10::48067\n")
    source = resolve_source(str(own / "train_ratings.dat"))
    assert (source.layout_name, source.users.name, source.movies) == ("ml-1m", "users.dat", None)
    (own / "mine.csv").write_bytes(b"userId,movieId,rating,timestamp\n1,2,3.5,4\n")
    assert resolve_source(str(own / "mine.csv")).layout_name == "ml-csv"
    forced = resolve_source(str(own / "train_ratings.dat"), layout="ml-10m")
    assert (forced.layout_name, forced.users) == ("ml-10m", None)
    with pytest.raises(ValueError, match="unknown MovieLens layout 'ml-2m'"):
        resolve_source(str(own), layout="ml-2m")


def test_finding_errors_name_the_path(tmp_path, generated):
    missing = tmp_path / "nowhere" / "ratings.dat"
    with pytest.raises(FileNotFoundError, match=f"MovieLens input {re.escape(str(missing))} "
                                                "does not exist"):
        resolve_source(str(missing))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no MovieLens ratings file .*u.data.* in "
                                                f"{re.escape(str(empty))}"):
        resolve_source(str(empty))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("u.data", "ratings.dat"):
        (mixed / name).write_bytes(b"")
    with pytest.raises(ValueError, match="ratings files of several layouts \\(ml-100k, ml-1m\\)"):
        resolve_source(str(mixed))
    two = tmp_path / "two"
    for sub in ("a", "b"):
        (two / sub).mkdir(parents=True)
        (two / sub / "ratings.csv").write_bytes(b"")
    with pytest.raises(ValueError, match="several MovieLens data sets under"):
        resolve_source(str(two))
    fake = tmp_path / "ml-1m.zip"
    fake.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="is not a valid zip archive"):
        resolve_source(str(fake))
    several = tmp_path / "several.zip"
    with zipfile.ZipFile(several, "w") as out:
        out.writestr("a/ratings.dat", "1::2::3::4\n")
        out.writestr("b/u.data", "1\t2\t3\t4\n")
    with pytest.raises(ValueError, match="holds several MovieLens data sets"):
        resolve_source(str(several))


def test_data_on_a_non_local_filesystem(generated):
    """ram:// goes through TensorFlow's filesystem like gs://, s3:// or hdfs:// would."""
    root = f"ram://kiko-{uuid.uuid4().hex}/ml-100k"
    report = generated["ml-100k"]
    for path in (report.ratings_path, report.users_path, report.movies_path):
        with open(path, "rb") as f, fileio.open(f"{root}/{Path(path).name}", "wb") as out:
            out.write(f.read())
    source = resolve_source(root)
    assert (source.layout_name, source.ratings.path) == ("ml-100k", f"{root}/u.data")
    size = source.ratings.size()
    lines = [line for c in plan_chunks(source.ratings.path, size, 4096)
             for line in read_chunk_lines(c)]
    assert len(lines) == report.n_ratings
    users = read_side_file(source.users, source.layout, "users", skip_malformed=False)
    assert len(users.records) == report.n_users
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(report.ratings_path, "ml-100k/u.data")
    with fileio.open(f"{root}.zip", "wb") as out:
        out.write(buffer.getvalue())
    zipped = resolve_source(f"{root}.zip")
    assert zipped.ratings == FileRef(f"{root}.zip", "ml-100k/u.data")
    assert zipped.ratings.sha256() == source.ratings.sha256()


def test_layout_modules_agree_with_the_generator(generated):
    for layout, module_file in (("ml-100k", ml100k.RATINGS_FILE), ("ml-1m", ml1m.RATINGS_FILE),
                                ("ml-10m", ml1m.RATINGS_FILE), ("ml-csv", mlcsv.RATINGS_FILE)):
        assert Path(generated[layout].ratings_path).name == module_file
    assert (Path(generated["ml-10m"].out_dir) / ml10m.TAGS_FILE).is_file()


@pytest.mark.parametrize("zipped", [False, True])
def test_a_forced_wrong_layout_names_what_it_expects_and_what_is_there(tmp_path, generated,
                                                                       zipped):
    """--layout ml-100k on an ML-1M release: the message names u.data (what ml-100k reads)
    and the ratings.dat of layout ml-1m that is there, not a generic hint."""
    release = Path(generated["ml-1m"].out_dir)
    where = release
    if zipped:
        where = tmp_path / "ml-1m.zip"
        with zipfile.ZipFile(where, "w") as archive:
            for path in release.iterdir():
                archive.write(path, f"ml-1m/{path.name}")
    with pytest.raises(FileNotFoundError) as raised:
        resolve_source(str(where), layout="ml-100k")
    message = str(raised.value)
    assert "u.data" in message and str(where) in message
    assert "ratings.dat" in message and "--layout ml-1m" in message
    assert "such as" not in message

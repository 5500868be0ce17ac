"""`kiko spans` (kiko.data.spans_cut): a release of every layout, folder or zip, cut into
time-ordered spans by count, month and week; the spans hold exactly the release's ratings lines,
in time order, byte for byte, each span a data set of the same layout with the side files."""

import json
import zipfile

import numpy as np
import pytest

from kiko.data import spans_cut, synthetic
from kiko.data.movielens import MovieLensFormatError, get_layout
from kiko.data.movielens.reading import read_ratings
from kiko.data.movielens.source import resolve_source
from kiko.data.movielens.spans import span_dir_name, spans_pattern

LAYOUTS = sorted(synthetic.LAYOUT_STYLES)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """{layout: folder} of a small generated release per layout, plus the extra files real
    releases ship (a README, ML-100K's ready-made splits, ML-CSV's links.csv and tags.csv)."""
    root = tmp_path_factory.mktemp("releases")
    folders = {}
    for layout in LAYOUTS:
        folder = root / layout
        synthetic.generate(folder, synthetic.GeneratorConfig.small(seed=11, layout=layout))
        (folder / "README.txt").write_text(f"about {layout}\n", encoding="utf-8")
        if layout == "ml-100k":
            (folder / "u1.base").write_bytes((folder / "u.data").read_bytes()[:200])
        if layout == "ml-csv":
            (folder / "links.csv").write_bytes(b"movieId,imdbId,tmdbId\n1,0114709,862\n")
            (folder / "tags.csv").write_bytes(b"userId,movieId,tag,timestamp\n1,1,fun,1\n")
        folders[layout] = folder
    return folders


def data_lines(path, layout):
    """The ratings lines of a ratings file (header off), each with its newline."""
    lines = path.read_bytes().splitlines(keepends=True)
    return lines[1:] if get_layout(layout).ratings_header else lines


def stamp(line, layout):
    """A line's timestamp (the last field in every layout)."""
    return int(line.rstrip(b"\r\n").replace(b"\t", b",").replace(b"::", b",").split(b",")[-1])


def zipped(folder, target):
    """The release folder as GroupLens zips it: one folder inside the archive."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{folder.name}/{path.name}")
    return target


def expected_side_files(folder, layout):
    ratings = get_layout(layout).ratings_file
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in (ratings, "generator.json", "u1.base"))


def check_spans(out, release, layout, manifest):
    """Every span: same layout, the side files byte for byte, its lines in time order; all
    spans together: the release's lines in (timestamp, line) order, none lost or repeated."""
    ratings = get_layout(layout).ratings_file
    expected = data_lines(release / ratings, layout)
    in_time_order = sorted(expected, key=lambda line: stamp(line, layout))  # stable: line order
    names = [entry["folder"] for entry in manifest["spans"]]
    assert names == [span_dir_name(k) for k in range(1, len(names) + 1)]
    assert spans_pattern([p.name for p in out.iterdir()]) == "span-{SPAN}"
    found = []
    for entry in manifest["spans"]:
        span = out / entry["folder"]
        source = resolve_source(str(span))
        assert source.layout_name == layout
        assert sorted(p.name for p in span.iterdir()) == sorted(
            [ratings] + expected_side_files(release, layout))
        for name in expected_side_files(release, layout):
            assert (span / name).read_bytes() == (release / name).read_bytes()
        lines = data_lines(span / ratings, layout)
        if get_layout(layout).ratings_header:
            header = (release / ratings).read_bytes().splitlines(keepends=True)[0]
            assert (span / ratings).read_bytes().startswith(header)
        stamps = [rating.timestamp for rating in read_ratings(source)]
        assert stamps == sorted(stamps) and len(stamps) == entry["ratings"]
        assert (stamps[0], stamps[-1]) == (entry["first_timestamp"], entry["last_timestamp"])
        found += lines
    assert found == in_time_order
    assert manifest["source"]["ratings"] == len(expected)
    assert json.loads((out / "spans.json").read_text()) == manifest


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_cut_by_count_in_every_layout(releases, tmp_path, layout, as_zip):
    release = releases[layout]
    data = zipped(release, tmp_path / f"{layout}.zip") if as_zip else release
    manifest = spans_cut.cut(str(data), tmp_path / "spans", count=4)
    check_spans(tmp_path / "spans", release, layout, manifest)
    counts = [entry["ratings"] for entry in manifest["spans"]]
    assert len(counts) == 4 and max(counts) - min(counts) <= 1
    assert manifest["cut"] == {"by": "count", "count": 4}
    assert manifest["side_files"] == expected_side_files(release, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("period", spans_cut.PERIODS)
def test_cut_by_month_and_week(releases, tmp_path, layout, period):
    release = releases[layout]
    manifest = spans_cut.cut(str(release), tmp_path / "spans", by=period)
    check_spans(tmp_path / "spans", release, layout, manifest)
    stamps = np.array([stamp(line, layout) for line in
                       data_lines(release / get_layout(layout).ratings_file, layout)])
    keys = np.unique(spans_cut.period_keys(stamps, period))
    assert [entry["period"] for entry in manifest["spans"]] == [
        spans_cut.period_label(key, period) for key in keys]
    for entry in manifest["spans"]:
        first, last = (spans_cut.period_keys(np.array([entry[k]]), period)[0]
                       for k in ("first_timestamp", "last_timestamp"))
        assert first == last  # one calendar period per span


def test_period_labels_are_calendar_months_and_iso_weeks():
    def label(iso, period):
        key = spans_cut.period_keys(np.array([np.datetime64(iso, "s").astype(np.int64)]),
                                    period)[0]
        return spans_cut.period_label(key, period)

    assert label("2000-05-31T23:59:59", "month") == "2000-05"
    assert label("2000-06-01T00:00:00", "month") == "2000-06"
    assert label("2000-01-01T12:00:00", "week") == "1999-W52"  # a Saturday
    assert label("2021-01-03T23:59:59", "week") == "2020-W53"  # a Sunday
    assert label("2021-01-04T00:00:00", "week") == "2021-W01"  # the Monday after
    assert label("1970-01-01T00:00:00", "week") == "1970-W01"


def test_bytes_are_kept_crlf_bom_and_a_last_line_without_newline(tmp_path):
    release = tmp_path / "ml-latest-small"
    release.mkdir()
    rows = [b"1,10,4.0,300", b"2,11,3.5,100", b"1,12,5.0,200", b"3,10,0.5,100"]
    (release / "ratings.csv").write_bytes(
        b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n" + b"\r\n".join(rows))
    (release / "movies.csv").write_bytes(b"movieId,title,genres\r\n10,A (1999),Drama\r\n")
    spans_cut.cut(str(release), tmp_path / "spans", count=2)
    first = (tmp_path / "spans/span-1/ratings.csv").read_bytes()
    second = (tmp_path / "spans/span-2/ratings.csv").read_bytes()
    header = b"\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n"
    assert first == header + b"2,11,3.5,100\r\n3,10,0.5,100\n"  # the last line gains "\n"
    assert second == header + b"1,12,5.0,200\r\n1,10,4.0,300\r\n"
    assert [r.timestamp for r in read_ratings(resolve_source(str(tmp_path / "spans/span-2")))] \
        == [200, 300]


def test_a_bom_without_header_stays_at_the_top_of_each_span(tmp_path):
    release = tmp_path / "ml-1m"
    release.mkdir()
    (release / "ratings.dat").write_bytes(b"\xef\xbb\xbf1::1::5::20\n2::1::4::10\n")
    spans_cut.cut(str(release), tmp_path / "spans", count=2)
    assert (tmp_path / "spans/span-1/ratings.dat").read_bytes() == b"\xef\xbb\xbf2::1::4::10\n"
    assert (tmp_path / "spans/span-2/ratings.dat").read_bytes() == b"\xef\xbb\xbf1::1::5::20\n"


def test_a_ratings_file_alone_is_cut_under_its_layouts_name(releases, tmp_path):
    release = releases["ml-10m"]
    manifest = spans_cut.cut(str(release / "ratings.dat"), tmp_path / "spans", count=2)
    assert manifest["side_files"] == ["movies.dat", "tags.dat"]
    assert resolve_source(str(tmp_path / "spans/span-2")).layout_name == "ml-10m"


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_a_malformed_line_is_an_error_naming_file_and_line(releases, tmp_path, as_zip):
    release = tmp_path / "ml-1m"
    release.mkdir()
    lines = (releases["ml-1m"] / "ratings.dat").read_bytes().splitlines(keepends=True)
    lines[4] = b"1::2::three::978300760\n"
    (release / "ratings.dat").write_bytes(b"".join(lines))
    data = zipped(release, tmp_path / "ml-1m.zip") if as_zip else release
    with pytest.raises(MovieLensFormatError) as error:
        spans_cut.cut(str(data), tmp_path / "spans", count=3)
    where = f"{data}!ml-1m/ratings.dat" if as_zip else f"{release}/ratings.dat"
    assert str(error.value).startswith(f"{where}:5: rating 'three' is not a number")
    assert not list((tmp_path / "spans").glob("span-*"))


def test_cli_refuses_a_non_empty_out_unless_forced(releases, tmp_path, capsys):
    out = tmp_path / "spans"
    release = str(releases["ml-100k"])
    assert spans_cut.main(["--data", release, "--out", str(out), "--count", "5"]) == 0
    printed = capsys.readouterr().out
    assert "into 5 spans" in printed and "span-5: " in printed and "u.item, u.user" in printed
    (out / "notes.txt").write_text("mine")
    assert spans_cut.main(["--data", release, "--out", str(out), "--count", "3"]) == 1
    assert "is not empty" in capsys.readouterr().err and (out / "span-5").is_dir()
    assert spans_cut.main(["--data", release, "--out", str(out), "--count", "3",
                           "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt", "span-1", "span-2", "span-3", "spans.json"]
    assert len(spans_cut.read_manifest(out)["spans"]) == 3


def test_cli_errors(releases, tmp_path, capsys):
    release = str(releases["ml-1m"])
    with pytest.raises(SystemExit) as exit_info:
        spans_cut.main(["--data", release, "--out", str(tmp_path / "a")])
    assert exit_info.value.code == 2  # --count or --by is required
    with pytest.raises(SystemExit):
        spans_cut.main(["--data", release, "--out", str(tmp_path / "a"), "--count", "0"])
    assert spans_cut.main(["--data", release, "--out", str(tmp_path / "b"),
                           "--count", "6001"]) == 1
    assert "6000 ratings into 6001 spans" in capsys.readouterr().err
    assert spans_cut.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "c"),
                           "--by", "week"]) == 1
    assert "does not exist" in capsys.readouterr().err

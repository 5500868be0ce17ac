"""The bad-input corpus: every way a careful user can hand kiko broken data.

Each case checks the outcome (fails or completes), that the message names the file and line,
that examples + rejected + dropped duplicates = lines read, and that no value is altered.
"""

import glob
import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from kiko.components.anomalies_gate.component import describe_anomalies, extremes_of
from kiko.components.movielens_example_gen import outputs
from kiko.components.movielens_example_gen.component import locate_input, make_input_config
from kiko.components.movielens_example_gen.errors import (
    MalformedLineError, malformed_line_message, user_line)
from kiko.components.movielens_example_gen.options import MALFORMED_SKIP
from kiko.data.movielens import Rating
from kiko.data.movielens.records import MAX_INT64
from kiko.data.movielens.source import resolve_source
from kiko.model import features as fk
from kiko.pipeline import configs
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tests.conftest import run_example_gen

GOOD = [b"%d::%d::%d::%d" % (u, m, 1 + (u + m) % 5, 978300000 + u * 100 + m)
        for u in range(1, 11) for m in range(1, 11)]
BAD_AT = 50  # 0-based position of the bad line: it is line 51 of the file
USERS = [b"%d::%s::25::%d::%05d" % (u, b"MF"[u % 2:u % 2 + 1], u % 21, 10000 + u)
         for u in range(1, 11)]
MOVIES = [b"%d::Movie %d (19%02d)::Drama|Comedy" % (m, m, 50 + m) for m in range(1, 11)]


def _write(folder, name, lines, newline=b"\n"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"".join(line + newline for line in lines))


def _run(folder, out, beam_pipeline_args=(), **options):
    base, pattern = locate_input(resolve_source(str(folder)))
    return run_example_gen(base, out, input_config=make_input_config({"single_split": pattern}),
                           beam_pipeline_args=beam_pipeline_args, **options)


def _examples(examples):
    files = []
    for split in artifact_utils.decode_split_names(examples.split_names):
        files += glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz"))
    return [tf.train.Example.FromString(bytes(r.numpy()))
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _rating(example):
    f = example.features.feature
    return Rating(f[fk.USER_ID].int64_list.value[0], f[fk.MOVIE_ID].int64_list.value[0],
                  f[fk.RATING].float_list.value[0], f[fk.TIMESTAMP].int64_list.value[0])


def _good_ratings(lines):
    return sorted(Rating(*(int(x) if i != 2 else float(x) for i, x in enumerate(
        line.strip().split(b"::")))) for line in lines)


def _report(examples):
    return json.loads(examples.get_string_custom_property(outputs.DATA_QUALITY_PROPERTY))


def _accounted(report):
    return (report["examples"] + report["rejected_lines"] + report["duplicates_exact"]
            + report["duplicates_conflicting"]) == report["lines_read"]


BAD_LINES = [
    (b"18446744073709551617::5::3::978300760",
     f"UserID 18446744073709551617 is larger than the int64 maximum {MAX_INT64}"),
    (b"9223372036854775809::5::3::978300760",
     f"UserID 9223372036854775809 is larger than the int64 maximum {MAX_INT64}"),
    (b"1::9223372036854775808::3::978300760",
     f"MovieID 9223372036854775808 is larger than the int64 maximum {MAX_INT64}"),
    (b"1::5::3::9223372036854775808",
     f"timestamp 9223372036854775808 is larger than the int64 maximum {MAX_INT64}"),
    (b"1::5::NaN::978300760", "rating 'NaN' is not a number"),
    (b"1::5::inf::978300760", "rating 'inf' is not a number"),
    (b"1::5::1e999::978300760", "rating '1e999' is not a finite number"),
    (b"1::5::3.3::978300760", "rating '3.3' cannot be stored exactly as a 32-bit float"),
    (b"1::5::3::yesterday", "timestamp 'yesterday' is not an integer"),
    (b"1:: 5::3::978300760", "MovieID ' 5' is not an integer"),
    (b"1::5::3::978300760 ", "timestamp '978300760 ' is not an integer"),
    (b"1::5\x00::3::978300760", "NUL byte at column 5"),
    (b"1,5,3,978300760", "expected 4 fields separated by '::', got 1"),
    (b"1\t5\t3\t978300760", "expected 4 fields separated by '::', got 1"),
    (b"1::5::3", "expected 4 fields separated by '::', got 3"),
    (b"-1::5::3::978300760", "UserID -1 is negative"),
    (b"\xff\xfe::5::3::978300760", "UserID '\xff\xfe' is not an integer"),
]


@pytest.mark.parametrize("bad, reason", BAD_LINES, ids=[r[:30] for _, r in BAD_LINES])
def test_a_malformed_line_fails_or_is_quarantined_never_altered(tmp_path, bad, reason):
    lines = GOOD[:BAD_AT] + [bad] + GOOD[BAD_AT:]
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", lines)
    with pytest.raises(Exception, match=r"ratings\.dat:51: " + reason.replace("(", r"\(")
                       .replace(")", r"\)").replace(".", r"\.")):
        _run(folder, tmp_path / "fail")
    examples = _run(folder, tmp_path / "skip", malformed_lines=MALFORMED_SKIP,
                    max_rejected_fraction=0.05)
    report = _report(examples)
    assert (report["lines_read"], report["rejected_lines"], report["examples"]) == (101, 1, 100)
    assert _accounted(report)
    rejected = open(os.path.join(report["rejected_path"], "ratings.dat.txt"),
                    encoding="utf-8").read().splitlines()
    assert len(rejected) == 1 and f"{folder}/ratings.dat:51: " in rejected[0]
    assert sorted(_rating(e) for e in _examples(examples)) == _good_ratings(GOOD)


def test_largest_values_are_kept_exactly(tmp_path):
    lines = GOOD + [b"%d::%d::0.5::%d" % (MAX_INT64, MAX_INT64, MAX_INT64)]
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", lines)
    got = sorted(_rating(e) for e in _examples(_run(folder, tmp_path / "out")))
    assert got[-1] == Rating(MAX_INT64, MAX_INT64, 0.5, MAX_INT64)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n\r\n"], ids=["empty", "blank-lines"])
def test_empty_input_is_an_error(tmp_path, content):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ratings.dat").write_bytes(content)
    with pytest.raises(Exception, match=r"no examples in split\(s\) train, eval of "
                                        r".*ratings\.dat: 0 lines read, 0 rejected"):
        _run(folder, tmp_path / "out", malformed_lines=MALFORMED_SKIP)


def test_a_file_in_another_format_is_an_error_even_when_skipping(tmp_path):
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", [line.replace(b"::", b",") for line in GOOD])
    with pytest.raises(Exception, match=r"no examples in split\(s\) train, eval of .*ratings\.dat: "
                                        r"100 lines read, 100 rejected, 0 duplicates dropped "
                                        r"\(the rejected lines are in .*rejected_lines\)"):
        _run(folder, tmp_path / "out", malformed_lines=MALFORMED_SKIP)


def test_too_many_rejects_fail_the_run(tmp_path):
    lines = GOOD + [b"x::1::1::1"] * 3
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", lines)
    with pytest.raises(Exception, match=r"3 of 103 lines of .*ratings\.dat rejected \(2\.9%, "
                                        r"more than --max-rejected-fraction 0\.01\)"):
        _run(folder, tmp_path / "out", malformed_lines=MALFORMED_SKIP)


def test_a_bom_is_stripped_and_reported(tmp_path):
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", [b"\xef\xbb\xbf" + GOOD[0]] + GOOD[1:])
    examples = _run(folder, tmp_path / "out")
    report = _report(examples)
    assert report["bom"] and report["examples"] == 100 and report["rejected_lines"] == 0
    assert sorted(_rating(e) for e in _examples(examples)) == _good_ratings(GOOD)


def test_crlf_line_ends_are_read(tmp_path):
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", GOOD, newline=b"\r\n")
    examples = _run(folder, tmp_path / "out")
    assert sorted(_rating(e) for e in _examples(examples)) == _good_ratings(GOOD)


@pytest.mark.parametrize("name", ["ratings.dat", "users.dat"])
def test_gzip_bytes_in_a_text_file_are_refused(tmp_path, name):
    import gzip
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", GOOD)
    _write(folder, "users.dat", USERS)
    (folder / name).write_bytes(gzip.compress((folder / name).read_bytes()))
    with pytest.raises(ValueError, match=f"{name} is gzip-compressed .*decompress it first"):
        _run(folder, tmp_path / "out", malformed_lines=MALFORMED_SKIP)


def test_out_of_range_ratings_pass_ingestion_with_their_lines_recorded(tmp_path):
    """Ranges are the schema's job: ExampleGen records where the extremes are for the gate."""
    high, low = b"11::4::6::978300001", b"11::5::0::978300002"
    lines = GOOD[:10] + [high] + GOOD[10:20] + [low] + GOOD[20:]
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", lines)
    report = _report(_run(folder, tmp_path / "out"))
    extreme = report["extremes"][fk.RATING]
    assert (extreme["high"], extreme["high_at"]) == (6.0, f"{folder}/ratings.dat:11")
    assert (extreme["low"], extreme["low_at"]) == (0.0, f"{folder}/ratings.dat:22")
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info[fk.RATING]
    info.short_description = "Out-of-range values"
    info.description = "Unexpectedly high value: 6>5."
    info.reason.add(type=anomalies_pb2.AnomalyInfo.FLOAT_TYPE_BIG_FLOAT)
    (line,) = describe_anomalies(anomalies, "train", extremes_of(report))
    assert line.endswith(f"(e.g. 6 at {folder}/ratings.dat:11)")


@pytest.mark.parametrize("side, bad, reason", [
    ("users.dat", b"11::X::25", "expected 5 fields separated by '::', got 3"),
    ("users.dat", b"11::F::25::99::12345", "occupation 99 is not an ML-1M occupation code"),
    ("users.dat", b"3::F::25::1::12345", "duplicate id 3 \\(first on line 3\\)"),
    ("movies.dat", b"11::Broken (2000)::", "no genres"),
    ("movies.dat", b"12::\x00Nul (2000)::Drama", "NUL byte at column 5"),
])
def test_a_malformed_side_file_line(tmp_path, side, bad, reason):
    folder = tmp_path / "data"
    _write(folder, "ratings.dat", GOOD + [b"11::11::4::978300000", b"12::12::4::978300000"])
    users = USERS + ([bad] if side == "users.dat" else [])
    movies = MOVIES + ([bad] if side == "movies.dat" else [])
    _write(folder, "users.dat", users)
    _write(folder, "movies.dat", movies)
    with pytest.raises(Exception, match=rf"{side}:11: {reason}"):
        _run(folder, tmp_path / "fail")
    examples = _run(folder, tmp_path / "skip", malformed_lines=MALFORMED_SKIP,
                    max_rejected_fraction=0.1)
    report = _report(examples)
    kind = side.split(".")[0]
    assert report["side_files"][kind]["rejected_lines"] == 1
    assert report["side_files"][kind]["lines_read"] == 11 and _accounted(report)
    rejected = open(os.path.join(report["rejected_path"], "ratings.dat.side_files.txt"),
                    encoding="utf-8").read()
    assert f"{side}:11: " in rejected
    assert report["examples"] == 102 and report["rejected_lines"] == 0


def test_invalid_utf8_in_a_utf8_release(tmp_path):
    folder = tmp_path / "ml-25m"
    header = b"userId,movieId,rating,timestamp"
    lines = [line.replace(b"::", b",") for line in GOOD]
    _write(folder, "ratings.csv", [header] + lines[:BAD_AT] + [b"1,5,4.0,97\xe9"] + lines[BAD_AT:])
    _write(folder, "movies.csv", [b"movieId,title,genres"] + [
        b"%d,\xe5\x8d\x83\xe3\x81\xa8 %d (2001),Animation" % (m, m) for m in range(1, 11)])
    with pytest.raises(Exception, match=r"ratings\.csv:52: not valid utf-8: byte 0xe9 at column "
                                        r"11"):
        _run(folder, tmp_path / "fail")
    examples = _run(folder, tmp_path / "skip", malformed_lines=MALFORMED_SKIP,
                    max_rejected_fraction=0.05)
    titles = {e.features.feature[fk.TITLE].bytes_list.value[0].decode("utf-8")
              for e in _examples(examples)}
    assert "千と 3 (2001)" in titles


def test_a_wrong_csv_header_fails_even_when_skipping(tmp_path):
    folder = tmp_path / "ml-25m"
    _write(folder, "ratings.csv", [b"user,movie,rating,time"] + [
        line.replace(b"::", b",") for line in GOOD])
    with pytest.raises(Exception, match=r"ratings\.csv:1: expected the header 'userId,movieId,"
                                        r"rating,timestamp'"):
        _run(folder, tmp_path / "out", malformed_lines=MALFORMED_SKIP)


def _quoted(line):
    """A ratings.csv line with every other field quoted, as RFC 4180 CSV allows."""
    return b",".join(b'"%s"' % field if i % 2 == 0 else field
                     for i, field in enumerate(line.split(b"::")))


def test_quoted_csv_fields_give_the_same_examples(tmp_path):
    folder = tmp_path / "ml-25m"
    _write(folder, "ratings.csv", [b'"userId","movieId","rating","timestamp"'] + [
        _quoted(line) for line in GOOD])
    _write(folder, "movies.csv", [b'"movieId","title","genres"'] + [
        b'%d,"Say ""Cheese"" %d, The (19%02d)","Drama|Comedy"' % (m, m, 50 + m)
        for m in range(1, 11)])
    examples = _examples(_run(folder, tmp_path / "out"))
    assert sorted(_rating(e) for e in examples) == _good_ratings(GOOD)
    titles = {e.features.feature[fk.TITLE].bytes_list.value[0].decode("utf-8")
              for e in examples}
    assert titles == {f'Say "Cheese" {m}, The (19{50 + m})' for m in range(1, 11)}


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "multi-process"])
def test_a_malformed_line_fails_with_file_line_and_problem_only(tmp_path, workers):
    """Beam adds its step's name to a worker's error (and a multi-process runner raises the
    worker's traceback as text): the run fails with `file:line: reason: 'line'` alone."""
    folder = tmp_path / "ml-25m"
    lines = [_quoted(line) for line in GOOD]
    lines[5] = b'"1","x",3.0,5'
    _write(folder, "ratings.csv", [b"userId,movieId,rating,timestamp"] + lines)
    with pytest.raises(MalformedLineError) as caught:
        _run(folder, tmp_path / "out", beam_pipeline_args=configs.beam_pipeline_args(workers)
             if workers else ())
    assert str(caught.value) == f"{folder}/ratings.csv:7: MovieID 'x' is not an integer: " \
                                "'\"1\",\"x\",3.0,5'"


_USER_LINE = "data/ratings.csv:7: MovieID 'x' is not an integer: '1,x,3.0,5'"
_STEP = " [while running 'InputToRecord/Parse/ParDo(ParseChunk)']"


@pytest.mark.parametrize("text", [
    _USER_LINE + _STEP,  # what the in-process runner raises
    # what TFX records for the failed execution: the traceback, its last line naming the class
    "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
    f"kiko.components.movielens_example_gen.errors.MalformedLineError: {_USER_LINE}{_STEP}\n",
    f"kiko.components.movielens_example_gen.errors.MalformedLineError: {_USER_LINE}",
])
def test_user_line_is_file_line_and_problem_only(text):
    assert user_line(text) == _USER_LINE


def test_user_line_keeps_the_class_of_other_errors():
    assert user_line("Traceback ...\nKeyError: 'train'\n") == "KeyError: 'train'"
    assert user_line("components.x.DataCheckError: 3 examples lost") == "3 examples lost"


def test_malformed_line_message_of_errors_as_beam_raises_them():
    import apache_beam as beam

    def fail(_):
        raise MalformedLineError(_USER_LINE)

    with pytest.raises(Exception) as caught:
        with beam.Pipeline() as pipeline:
            _ = pipeline | beam.Create([1]) | "Parse" >> beam.Map(fail)
    assert "while running" in str(caught.value)
    assert malformed_line_message(caught.value) == _USER_LINE
    worker = RuntimeError("Traceback (most recent call last):\n  File \"passes.py\", line 2\n"
                          "kiko.components.movielens_example_gen.errors.MalformedLineError: "
                          f"{_USER_LINE}{_STEP}\n\n")
    assert malformed_line_message(worker) == _USER_LINE
    assert malformed_line_message(RuntimeError("no examples")) is None


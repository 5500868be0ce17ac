"""Pure parsing of every MovieLens layout: field parsers, line parsers, line reading."""

from __future__ import annotations

import pickle

import pytest

from kiko.data.movielens import LAYOUTS, ml100k, ml10m, ml1m, mlcsv
from kiko.data.movielens.files import FileRef
from kiko.data.movielens.reading import (
    HeaderError, LineFacts, check_header, decode, iter_records, read_side_file)
from kiko.data.movielens.records import (
    MAX_INT64, LineError, Movie, MovieLensFormatError, Rating, User, is_blank, parse_int,
    parse_rating_value, parse_year)


def _line(*fields: object, sep: str = "::") -> str:
    return sep.join(str(field) for field in fields)


# --- field parsers -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("0", 0), ("007", 7), (str(MAX_INT64), MAX_INT64), ("12345678901234567", 12345678901234567)])
def test_parse_int_valid(text, value):
    assert parse_int(text, "UserID") == value


@pytest.mark.parametrize("text, reason", [
    ("", "empty UserID"),
    ("-1", "UserID -1 is negative"),
    ("x", "UserID 'x' is not an integer"),
    ("1.0", "UserID '1.0' is not an integer"),
    (" 1", "UserID ' 1' is not an integer"),
    ("1 ", "UserID '1 ' is not an integer"),
    ("+1", "UserID '+1' is not an integer"),
    ("²", "UserID '²' is not an integer"),
    ("1_000", "UserID '1_000' is not an integer"),
    ("1\x002", "UserID '1\\x002' contains a NUL byte"),
    (str(MAX_INT64 + 1), f"UserID {MAX_INT64 + 1} is larger than the int64 maximum {MAX_INT64}"),
    ("18446744073709551617",
     f"UserID 18446744073709551617 is larger than the int64 maximum {MAX_INT64}"),
])
def test_parse_int_errors(text, reason):
    with pytest.raises(LineError) as caught:
        parse_int(text, "UserID")
    assert str(caught.value) == reason


@pytest.mark.parametrize("text, value", [
    ("5", 5.0), ("5.0", 5.0), ("0.5", 0.5), ("3.5", 3.5), ("4.25", 4.25), ("7", 7.0),
    ("-1", -1.0), ("1e0", 1.0), ("0.125", 0.125)])
def test_parse_rating_value_valid(text, value):
    assert parse_rating_value(text) == value and type(parse_rating_value(text)) is float


@pytest.mark.parametrize("text, reason", [
    ("", "empty rating"),
    ("x", "rating 'x' is not a number"),
    ("nan", "rating 'nan' is not a number"),
    ("inf", "rating 'inf' is not a number"),
    ("-inf", "rating '-inf' is not a number"),
    ("1e999", "rating '1e999' is not a finite number"),
    ("4_0", "rating '4_0' is not a number"),
    (" 4", "rating ' 4' is not a number"),
    ("1e39", "rating '1e39' does not fit a 32-bit float"),
    ("3.3", "rating '3.3' cannot be stored exactly as a 32-bit float (it would become "
            "3.299999952316284)"),
    ("4.000000001", "rating '4.000000001' cannot be stored exactly as a 32-bit float (it "
                    "would become 4.0)"),
])
def test_parse_rating_value_errors(text, reason):
    with pytest.raises(LineError) as caught:
        parse_rating_value(text)
    assert str(caught.value) == reason


@pytest.mark.parametrize("title, year", [
    ("Toy Story (1995)", 1995),
    ("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", 1995),
    ("City of Lost Children, The (1995) (1996)", 1996),
    ("1900 (1976)", 1976), ("Title (1995) ", 1995), ("No Year", None),
    ("Title (1995) Director's Cut", None), ("Title (95)", None), ("Title (19955)", None),
    ("Title (abcd)", None), ("Title (1995", None), ("Title (١٩٩٥)", None),
])
def test_parse_year(title, year):
    assert parse_year(title) == year


def test_is_blank():
    assert is_blank("") and is_blank("  \r\n") and is_blank("\t")
    assert not is_blank("x") and not is_blank("\x1c") and not is_blank("\x85")


def test_format_error_message_pickles_and_truncates():
    error = MovieLensFormatError("data/ratings.dat", 3, "1::2", "bad thing")
    assert str(error) == "data/ratings.dat:3: bad thing: '1::2'"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line_number, copy.line, copy.reason) == (
        "data/ratings.dat", 3, "1::2", "bad thing")
    long = str(MovieLensFormatError("r.dat", 1, "x" * 5000, "too long"))
    assert len(long) < 400 and "5000 characters" in long


# --- ratings lines of every layout -------------------------------------------------------------

@pytest.mark.parametrize("layout, line, expected", [
    ("ml-1m", "1::1193::5::978300760", Rating(1, 1193, 5.0, 978300760)),
    ("ml-1m", "1::1193::5::978300760\r\n", Rating(1, 1193, 5.0, 978300760)),
    ("ml-10m", "1::122::3.5::838985046", Rating(1, 122, 3.5, 838985046)),
    ("ml-100k", "196\t242\t3\t881250949", Rating(196, 242, 3.0, 881250949)),
    ("ml-csv", "1,296,5.0,1147880044", Rating(1, 296, 5.0, 1147880044)),
    ("ml-csv", "1,306,0.5,1147868817", Rating(1, 306, 0.5, 1147868817)),
    ("ml-csv", "12,34,7.0,1", Rating(12, 34, 7.0, 1)),  # ranges are the schema's job
])
def test_rating_lines(layout, line, expected):
    rating = LAYOUTS[layout].parse_rating(line)
    assert rating == expected
    assert type(rating.rating) is float and type(rating.user_id) is int


@pytest.mark.parametrize("layout, line, reason", [
    ("ml-1m", "1::2::3", "expected 4 fields separated by '::', got 3"),
    ("ml-1m", "1,2,3,4", "expected 4 fields separated by '::', got 1"),
    ("ml-1m", "1:::2::3::4", "MovieID ':2' is not an integer"),
    ("ml-1m", "18446744073709551617::2::3::4",
     f"UserID 18446744073709551617 is larger than the int64 maximum {MAX_INT64}"),
    ("ml-1m", "9223372036854775809::2::3::4",
     f"UserID 9223372036854775809 is larger than the int64 maximum {MAX_INT64}"),
    ("ml-1m", "1::2::3::99999999999999999999",
     f"timestamp 99999999999999999999 is larger than the int64 maximum {MAX_INT64}"),
    ("ml-1m", "1::2::3::12.5", "timestamp '12.5' is not an integer"),
    ("ml-1m", "1::2::NaN::4", "rating 'NaN' is not a number"),
    ("ml-1m", "1:: 2::3::4", "MovieID ' 2' is not an integer"),
    ("ml-100k", "1::2::3::4", "expected 4 fields separated by '\\t', got 1"),
    ("ml-csv", "1,2,3.3,4", "rating '3.3' cannot be stored exactly as a 32-bit float (it "
                            "would become 3.299999952316284)"),
    ("ml-csv", "1,2,3,4,5", "expected 4 fields separated by ',', got 5"),
    # Quoted CSV fields: the same reasons as for the same fields unquoted.
    ("ml-csv", '"",50,3.0,972874811', "empty UserID"),
    ("ml-csv", '"1 ",50,3.0,972874811', "UserID '1 ' is not an integer"),
    ("ml-csv", '1,50,"3.3",972874811', "rating '3.3' cannot be stored exactly as a 32-bit "
                                       "float (it would become 3.299999952316284)"),
    ("ml-csv", '1,"5""0",3.0,972874811', "MovieID '5\"0' is not an integer"),  # "" is one "
    ("ml-csv", '1,"50,3.0",972874811', "expected 4 fields separated by ',', got 3"),
    ("ml-csv", '"1",50,3.0,972874811,5', "expected 4 fields separated by ',', got 5"),
    ("ml-csv", '1,50,3.0,"972874811', "bad CSV quoting (unexpected end of data)"),
    ("ml-csv", '"1"x,50,3.0,972874811', "bad CSV quoting (',' expected after '\"')"),
])
def test_rating_line_errors(layout, line, reason):
    with pytest.raises(LineError) as caught:
        LAYOUTS[layout].parse_rating(line)
    assert str(caught.value) == reason


@pytest.mark.parametrize("line", [
    '"1",50,"3.0",972874811', '"1","50","3.0","972874811"', '1,50,3.0,"972874811"\r\n',
    '1,"50","3",972874811'])
def test_quoted_csv_ratings_have_their_unquoted_values(line):
    assert mlcsv.LAYOUT.parse_rating(line) == Rating(1, 50, 3.0, 972874811)


def test_quoted_csv_headers_and_lines_in_files(tmp_path):
    rows = _results([b'"userId","movieId","rating","timestamp"', b'"1",50,"3.0",972874811',
                     b'2,"7",4.5,"1"'], "ml-csv")
    assert [r[2] for r in rows] == [Rating(1, 50, 3.0, 972874811), Rating(2, 7, 4.5, 1)]
    ref = _write(tmp_path / "movies.csv", ['"movieId","title","genres"',
                                           '"1","Say ""Cheese"" (1999)","Comedy|Drama"'], "utf-8")
    side = read_side_file(ref, mlcsv.LAYOUT, "movies", skip_malformed=False)
    assert side.records == {1: Movie(1, 'Say "Cheese" (1999)', 1999, ("Comedy", "Drama"))}
    check_header(ref, mlcsv.MOVIES_HEADER, mlcsv.ENCODING)
    with pytest.raises(HeaderError):
        _results([b'"userId","movieId","rating"', b"1,2,3,4"], "ml-csv")


# --- side lines --------------------------------------------------------------------------------

def test_ml1m_users_decode_occupation_codes():
    assert ml1m.parse_user_line("1::F::1::10::48067\r\n") == User(1, "F", 1, "K-12 student",
                                                                   "48067")
    assert ml1m.parse_user_line("2::M::56::16::55117-3842").occupation == "self-employed"
    assert len(ml1m.OCCUPATIONS) == 21


@pytest.mark.parametrize("line, reason", [
    ("1::F::1::10", "expected 5 fields separated by '::', got 4"),
    ("1::::1::10::48067", "empty gender"),
    ("1::F::x::10::48067", "age 'x' is not an integer"),
    ("1::F::1::21::48067", "occupation 21 is not an ML-1M occupation code (0-20)"),
    ("1::F::1::-3::48067", "occupation -3 is negative"),
    ("1::F::1::10::", "empty zip code"),
])
def test_ml1m_user_errors(line, reason):
    with pytest.raises(LineError) as caught:
        ml1m.parse_user_line(line)
    assert str(caught.value) == reason


def test_movies_lines_of_every_layout():
    assert ml1m.parse_movie_line("1::Toy Story (1995)::Animation|Children's|Comedy") == Movie(
        1, "Toy Story (1995)", 1995, ("Animation", "Children's", "Comedy"))
    assert ml10m.LAYOUT.parse_movie("65261::Gake no ue no Ponyo (2008)::Children") == Movie(
        65261, "Gake no ue no Ponyo (2008)", 2008, ("Children",))
    assert mlcsv.parse_movie_line('11,"American President, The (1995)",Comedy|Drama|Romance') \
        == Movie(11, "American President, The (1995)", 1995, ("Comedy", "Drama", "Romance"))
    assert mlcsv.parse_movie_line('3,"Say ""Cheese"" (1999)",(no genres listed)') == Movie(
        3, 'Say "Cheese" (1999)', 1999, ("(no genres listed)",))
    item = "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1" + "|0" * 13
    assert ml100k.parse_movie_line(item) == Movie(
        1, "Toy Story (1995)", 1995, ("Animation", "Children's", "Comedy"))
    no_year = "267|unknown||||1" + "|0" * 18
    assert ml100k.parse_movie_line(no_year) == Movie(267, "unknown", None, ("unknown",))
    dated = "5|Copycat|01-Jan-1995||http://x|0|0" + "|0" * 16 + "|1"
    assert ml100k.parse_movie_line(dated).year == 1995
    assert ml100k.parse_user_line("1|24|M|technician|85711") == User(1, "M", 24, "technician",
                                                                     "85711")


@pytest.mark.parametrize("parse, line, reason", [
    (ml1m.parse_movie_line, "1::Toy Story (1995)", "expected 3 fields separated by '::', got 2"),
    (ml1m.parse_movie_line, "1::Toy Story (1995)::", "no genres"),
    (ml1m.parse_movie_line, "1::T (1995)::Drama||Comedy", "empty genre in 'Drama||Comedy'"),
    (ml1m.parse_movie_line, "1::::Drama", "empty title"),
    (mlcsv.parse_movie_line, '1,"Unclosed (1995),Drama', "bad CSV quoting (unexpected end of "
                                                        "data)"),
    (mlcsv.parse_movie_line, '1,Title (1995)', "expected 3 fields separated by ',', got 2"),
    (ml100k.parse_movie_line, "1|T|d||u|2" + "|0" * 18, "genre flags must be 0 or 1, got '2|"
                                                      + "|".join(["0"] * 18) + "'"),
    (ml100k.parse_movie_line, "1|T|d||u" + "|0" * 19, "no genre flag set"),
    (ml100k.parse_user_line, "1|24|M|technician", "expected 5 fields separated by '|', got 4"),
])
def test_side_line_errors(parse, line, reason):
    with pytest.raises(LineError) as caught:
        parse(line)
    assert str(caught.value) == reason


# --- reading lines: decoding, BOM, header, blank lines -----------------------------------------

def _results(raw_lines, layout="ml-1m", first=1, facts=None):
    layout = LAYOUTS[layout]
    return list(iter_records(raw_lines, layout.parse_rating, layout.ratings_encoding, "r", first,
                             header=layout.ratings_header, facts=facts))


def test_iter_records_numbers_lines_and_keeps_going():
    facts = LineFacts()
    results = _results([b"1::1::5::1", b"", b"garbage", b"1::2::7::3", b"  \r", b"-1::2::3::4\r"],
                       first=10, facts=facts)
    assert [number for number, *_ in results] == [10, 12, 13, 15]
    assert results[0][2] == Rating(1, 1, 5.0, 1) and results[2][2] == Rating(1, 2, 7.0, 3)
    error = results[1][3]
    assert (error.path, error.line_number, error.line) == ("r", 12, "garbage")
    assert str(results[3][3]) == "r:15: UserID -1 is negative: '-1::2::3::4'"
    assert facts.blank_lines == 2 and not facts.bom


def test_bom_is_stripped_and_noted_only_on_line_one():
    facts = LineFacts()
    results = _results([b"\xef\xbb\xbf1::1::5::1", b"\xef\xbb\xbf2::1::5::1"], facts=facts)
    assert results[0][2] == Rating(1, 1, 5.0, 1) and facts.bom
    assert "UserID '\xef\xbb\xbf2' is not an integer" in str(results[1][3])
    utf8 = LineFacts()
    rows = _results([b"\xef\xbb\xbfuserId,movieId,rating,timestamp", b"1,2,4.5,3"], "ml-csv",
                    facts=utf8)
    assert [r[2] for r in rows] == [Rating(1, 2, 4.5, 3)] and utf8.bom


def test_header_must_match_and_is_not_a_record():
    assert [r[2] for r in _results([b"userId,movieId,rating,timestamp", b"1,2,4.0,3"],
                                   "ml-csv")] == [Rating(1, 2, 4.0, 3)]
    with pytest.raises(HeaderError, match=r"^r:1: expected the header 'userId,movieId,rating,"
                                          r"timestamp': '1,2,4.0,3'$"):
        _results([b"1,2,4.0,3"], "ml-csv")
    # Only line 1 of the file is a header: a later range starts counting elsewhere.
    assert [r[2] for r in _results([b"1,2,4.0,3"], "ml-csv", first=50)] == [Rating(1, 2, 4.0, 3)]


def test_decoding_follows_the_layout():
    latin = "Misérables (1995)".encode("latin-1")
    assert decode(latin, "latin-1") == "Misérables (1995)"
    with pytest.raises(LineError, match=r"^not valid utf-8: byte 0xe9 at column 4$"):
        decode(latin, "utf-8")
    assert decode("千と千尋の神隠し".encode("utf-8"), "utf-8") == "千と千尋の神隠し"
    with pytest.raises(LineError, match=r"^NUL byte at column 3"):
        decode(b"1:\x00:2", "latin-1")
    errors = _results([b"1::2::\xff::4", b"1::2\x00::3::4"], "ml-10m")
    assert [str(e[3]).split(": ")[1] for e in errors] == [
        "not valid utf-8", "NUL byte at column 5 (a binary or corrupted file?)"]


def _write(path, lines, encoding="latin-1"):
    path.write_bytes("".join(line + "\n" for line in lines).encode(encoding))
    return FileRef(str(path))


def test_read_side_file_keys_records_and_lines(tmp_path):
    ref = _write(tmp_path / "users.dat", ["1::F::1::10::48067", "", "2::M::56::16::55117-3842"])
    side = read_side_file(ref, ml1m.LAYOUT, "users", skip_malformed=False)
    assert side.records == {1: User(1, "F", 1, "K-12 student", "48067"),
                            2: User(2, "M", 56, "self-employed", "55117-3842")}
    assert side.line_of == {1: 1, 2: 3} and side.lines_read == 2 and side.facts.blank_lines == 1


def test_read_side_file_bad_and_duplicate_lines(tmp_path):
    ref = _write(tmp_path / "movies.dat", ["1::A (1995)::Drama", "2::B (1996)::", "1::C::Drama"])
    with pytest.raises(MovieLensFormatError, match=r"movies\.dat:2: no genres: '2::B \(1996\)::'"):
        read_side_file(ref, ml1m.LAYOUT, "movies", skip_malformed=False)
    side = read_side_file(ref, ml1m.LAYOUT, "movies", skip_malformed=True)
    assert list(side.records) == [1] and side.lines_read == 3
    assert [r.split(": ")[1] for r in side.rejected] == [
        "no genres", "duplicate id 1 (first on line 1)"]


def test_read_side_file_utf8_and_csv_header(tmp_path):
    ref = _write(tmp_path / "movies.csv", ["movieId,title,genres",
                                           '1,"千と千尋の神隠し, The (2001)",Animation'], "utf-8")
    side = read_side_file(ref, mlcsv.LAYOUT, "movies", skip_malformed=False)
    assert side.records[1].title == "千と千尋の神隠し, The (2001)" and side.lines_read == 1
    wrong = _write(tmp_path / "other.csv", ["id,name,genres", "1,x (2001),Drama"], "utf-8")
    with pytest.raises(HeaderError):
        read_side_file(wrong, mlcsv.LAYOUT, "movies", skip_malformed=True)


def test_latin1_bytes_are_not_line_breaks(tmp_path):
    path = tmp_path / "movies.dat"
    path.write_bytes(b"7::Odd\x85Title (1990)::Drama\n8::Next (1991)::Comedy\n")
    side = read_side_file(FileRef(str(path)), ml1m.LAYOUT, "movies", skip_malformed=False)
    assert side.records[7].title == "Odd\x85Title (1990)" and side.records[8].year == 1991


@pytest.mark.parametrize("head, message", [
    (b"\x1f\x8b\x08\x00", "is gzip-compressed"), (b"PK\x03\x04", "is a zip archive")])
def test_compressed_files_are_refused_before_reading(tmp_path, head, message):
    path = tmp_path / "users.dat"
    path.write_bytes(head + b"\x00garbage")
    with pytest.raises(ValueError, match=message):
        read_side_file(FileRef(str(path)), ml1m.LAYOUT, "users", skip_malformed=True)

"""Tests of kiko_data.movielens on small files generated in the MovieLens-1M format."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import pytest

from kiko_model.features import (
    ML1M_ENCODING,
    ML1M_SEPARATOR,
    MOVIES_FILE,
    RATINGS_FILE,
    USERS_FILE,
)
from kiko_data.movielens import (
    FileRef,
    LineError,
    Movie,
    MovieLensFormatError,
    MovieLensSource,
    Rating,
    User,
    count_lines,
    is_blank,
    iter_rating_results,
    iter_ratings,
    parse_movie_line,
    parse_rating_line,
    parse_user_line,
    parse_year,
    read_movies,
    read_users,
    resolve_source,
    split_into_chunks,
    split_lines,
)

SEP = ML1M_SEPARATOR


def _line(*fields: object) -> str:
    return SEP.join(str(field) for field in fields)


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(line + "\n" for line in lines).encode(ML1M_ENCODING))
    return path


RATING_LINES = [_line(1, 1193, 5, 978300760), _line(1, 661, 3, 978302109)]
USER_LINES = [_line(1, "F", 1, 10, "48067"), _line(2, "M", 56, 16, "55117-3842")]
MOVIE_LINES = [
    _line(1, "Toy Story (1995)", "Animation|Children's|Comedy"),
    _line(2762, "Misérables, Les (1995)", "Drama"),
]


# --- line parsers ------------------------------------------------------------------------------

@pytest.mark.parametrize("line, expected", [
    (_line(1, 1193, 5, 978300760), Rating(1, 1193, 5.0, 978300760)),
    (_line(1, 1193, 5, 978300760) + "\n", Rating(1, 1193, 5.0, 978300760)),
    (_line(1, 1193, 5, 978300760) + "\r\n", Rating(1, 1193, 5.0, 978300760)),
    (_line(6040, 3952, "3.5", 0), Rating(6040, 3952, 3.5, 0)),
    (_line(12, 34, 7, 1), Rating(12, 34, 7.0, 1)),
    (_line(12, 34, "-1", 1), Rating(12, 34, -1.0, 1)),
    (_line("007", 34, "0.5", 1), Rating(7, 34, 0.5, 1)),
])
def test_parse_rating_line_valid(line: str, expected: Rating) -> None:
    rating = parse_rating_line(line)
    assert rating == expected
    assert type(rating.rating) is float and type(rating.user_id) is int


@pytest.mark.parametrize("line, reason", [
    (_line(1, 2, 3), "expected 4 fields separated by '::', got 3"),
    (_line(1, 2, 3, 4, 5), "expected 4 fields separated by '::', got 5"),
    ("1,2,3,4", "expected 4 fields separated by '::', got 1"),
    (_line("x", 2, 3, 4), "UserID 'x' is not an integer"),
    (_line(1, "2.0", 3, 4), "MovieID '2.0' is not an integer"),
    (_line(-1, 2, 3, 4), "UserID -1 is negative"),
    (_line(1, -2, 3, 4), "MovieID -2 is negative"),
    (_line("", 2, 3, 4), "empty UserID"),
    (_line(1, 2, "", 4), "empty rating"),
    (_line(1, 2, 3, ""), "empty timestamp"),
    (_line(1, 2, "x", 4), "rating 'x' is not a number"),
    (_line(1, 2, "nan", 4), "rating 'nan' is not a number"),
    (_line(1, 2, "inf", 4), "rating 'inf' is not a number"),
    (_line(1, 2, "1e999", 4), "rating '1e999' is not a finite number"),
    (_line(1, 2, "4_0", 4), "rating '4_0' is not a number"),
    (_line(1, 2, " 4", 4), "rating ' 4' is not a number"),
    (_line(1, 2, 3, "12.5"), "timestamp '12.5' is not an integer"),
    (_line(1, 2, 3, "1_000"), "timestamp '1_000' is not an integer"),
    (_line(1, "²", 3, 4), "MovieID '²' is not an integer"),
    ("1:::2::3::4", "MovieID ':2' is not an integer"),
])
def test_parse_rating_line_errors(line: str, reason: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_rating_line(line)
    assert str(caught.value) == reason


def test_parse_user_line() -> None:
    assert parse_user_line(USER_LINES[0] + "\r\n") == User(1, "F", 1, 10, "48067")
    assert parse_user_line(USER_LINES[1]) == User(2, "M", 56, 16, "55117-3842")


@pytest.mark.parametrize("line, reason", [
    (_line(1, "F", 1, 10), "expected 5 fields separated by '::', got 4"),
    (_line(1, "", 1, 10, "48067"), "empty gender"),
    (_line(1, "F", "x", 10, "48067"), "age 'x' is not an integer"),
    (_line(1, "F", 1, -3, "48067"), "occupation -3 is negative"),
    (_line(1, "F", 1, 10, ""), "empty zip code"),
    (_line("u1", "F", 1, 10, "48067"), "UserID 'u1' is not an integer"),
])
def test_parse_user_line_errors(line: str, reason: str) -> None:
    with pytest.raises(LineError, match=f"^{reason}$"):
        parse_user_line(line)


def test_parse_movie_line() -> None:
    assert parse_movie_line(MOVIE_LINES[0] + "\n") == Movie(
        1, "Toy Story (1995)", 1995, ("Animation", "Children's", "Comedy"))
    assert parse_movie_line(MOVIE_LINES[1]) == Movie(
        2762, "Misérables, Les (1995)", 1995, ("Drama",))
    triad = parse_movie_line(
        _line(30, "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", "Drama"))
    assert triad.title == "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)"
    assert triad.year == 1995


@pytest.mark.parametrize("title, year", [
    ("Toy Story (1995)", 1995),
    ("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)", 1995),
    ("City of Lost Children, The (1995) (1996)", 1996),
    ("1900 (1976)", 1976),
    ("(1995)", 1995),
    ("Title (1995) ", 1995),
    ("No Year", None),
    ("Title (1995) Director's Cut", None),
    ("Title (95)", None),
    ("Title (19955)", None),
    ("Title (abcd)", None),
    ("Title (1995", None),
    ("Title (١٩٩٥)", None),
])
def test_parse_year(title: str, year: int | None) -> None:
    assert parse_year(title) == year
    assert parse_movie_line(_line(5, title, "Drama")).year == year


@pytest.mark.parametrize("line, reason", [
    (_line(1, "Toy Story (1995)"), "expected 3 fields separated by '::', got 2"),
    (_line(1, "Toy Story (1995)", ""), "no genres"),
    (_line(1, "Toy Story (1995)", "Drama||Comedy"), "empty genre in 'Drama||Comedy'"),
    (_line(1, "", "Drama"), "empty title"),
    (_line("one", "Toy Story (1995)", "Drama"), "MovieID 'one' is not an integer"),
])
def test_parse_movie_line_errors(line: str, reason: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_movie_line(line)
    assert str(caught.value) == reason


def test_is_blank() -> None:
    assert is_blank("") and is_blank("\n") and is_blank("  \r\n") and is_blank("\t")
    assert not is_blank("x") and not is_blank(" :: ")
    assert not is_blank("\x1c") and not is_blank("\x85\n")
    with pytest.raises(MovieLensFormatError, match=r"^r:2: expected 4 fields"):
        list(iter_ratings([RATING_LINES[0], "\x1c\n"], "r"))


def test_split_lines_cuts_only_at_newline() -> None:
    # latin-1 decodes byte 0x85 to NEL, which str.splitlines would treat as a line break.
    assert split_lines("a\x85b\x1cc\r\nd\n") == ["a\x85b\x1cc\r", "d"]
    assert split_lines("a\nb") == ["a", "b"]
    assert split_lines("") == []
    assert split_lines("\n\n") == ["", ""]


# --- errors and iteration ----------------------------------------------------------------------

def test_format_error_message_and_pickle() -> None:
    error = MovieLensFormatError("data/ratings.dat", 3, "1::2", "bad thing")
    assert str(error) == "data/ratings.dat:3: bad thing: '1::2'"
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line_number, copy.line, copy.reason) == (
        "data/ratings.dat", 3, "1::2", "bad thing")
    assert str(copy) == str(error)


def test_format_error_truncates_long_lines() -> None:
    error = MovieLensFormatError("r.dat", 1, "x" * 5000, "too long")
    message = str(error)
    assert len(message) < 400
    assert message.startswith("r.dat:1: too long: 'xxx") and "5000 characters" in message
    assert error.line == "x" * 5000


def test_iter_ratings_reports_file_and_line() -> None:
    lines = [RATING_LINES[0] + "\n", "\n", _line(1, 2, "x", 4) + "\n", RATING_LINES[1] + "\n"]
    ratings = iter_ratings(lines, "in/ratings.dat")
    assert next(ratings) == Rating(1, 1193, 5.0, 978300760)
    with pytest.raises(MovieLensFormatError) as caught:
        next(ratings)
    error = caught.value
    assert (error.path, error.line_number, error.reason) == (
        "in/ratings.dat", 3, "rating 'x' is not a number")
    assert error.line == _line(1, 2, "x", 4)
    assert str(error) == "in/ratings.dat:3: rating 'x' is not a number: '1::2::x::4'"


def test_iter_ratings_first_line_number_offsets() -> None:
    with pytest.raises(MovieLensFormatError, match=r"^r\.dat:103: expected 4 fields"):
        list(iter_ratings([RATING_LINES[0], "   ", "1::2::3"], "r.dat", first_line_number=101))


def test_iter_ratings_skips_only_blank_lines() -> None:
    lines = ["", RATING_LINES[0], " \r\n", RATING_LINES[1], "\n"]
    assert list(iter_ratings(lines, "r.dat")) == [
        Rating(1, 1193, 5.0, 978300760), Rating(1, 661, 3.0, 978302109)]


def test_iter_rating_results_keeps_going_after_bad_lines() -> None:
    lines = [RATING_LINES[0], "", "garbage", _line(1, 2, 7, 3), _line(-1, 2, 3, 4) + "\r\n"]
    results = list(iter_rating_results(lines, "r.dat", first_line_number=10))
    assert [number for number, _, _ in results] == [10, 12, 13, 14]
    assert results[0] == (10, Rating(1, 1193, 5.0, 978300760), None)
    assert results[2] == (13, Rating(1, 2, 7.0, 3), None)
    for number, reason, line in [(12, "expected 4 fields separated by '::', got 1", "garbage"),
                                 (14, "UserID -1 is negative", "-1::2::3::4")]:
        result_number, rating, error = next(result for result in results if result[0] == number)
        assert rating is None and isinstance(error, MovieLensFormatError)
        assert (error.path, error.line_number, error.reason, error.line) == (
            "r.dat", number, reason, line)


# --- whole-file readers ------------------------------------------------------------------------

def test_read_users_and_movies(tmp_path: Path) -> None:
    users = read_users(FileRef(str(_write(tmp_path / USERS_FILE, USER_LINES + [""]))))
    assert users == {1: User(1, "F", 1, 10, "48067"), 2: User(2, "M", 56, 16, "55117-3842")}
    movies = read_movies(FileRef(str(_write(tmp_path / MOVIES_FILE, MOVIE_LINES))))
    assert set(movies) == {1, 2762}
    assert movies[1].genres == ("Animation", "Children's", "Comedy")


def test_latin1_title_round_trips(tmp_path: Path) -> None:
    title = "Misérables, Les (Shanghai, (Yao) 1995) (1995)"
    path = _write(tmp_path / MOVIES_FILE, [_line(2762, title, "Drama|Musical")])
    raw = path.read_bytes()
    assert b"Mis\xe9rables" in raw and "é".encode("utf-8") not in raw
    movie = read_movies(FileRef(str(path)))[2762]
    assert movie == Movie(2762, title, 1995, ("Drama", "Musical"))


def test_latin1_nel_byte_does_not_split_a_title(tmp_path: Path) -> None:
    path = tmp_path / MOVIES_FILE
    path.write_bytes(b"7::Odd\x85Title (1990)::Drama\n8::Next (1991)::Comedy\n")
    movies = read_movies(FileRef(str(path)))
    assert movies[7].title == "Odd\x85Title (1990)" and movies[8].year == 1991


def test_read_users_reports_bad_line(tmp_path: Path) -> None:
    path = _write(tmp_path / USERS_FILE, [USER_LINES[0], "", _line(3, "M", "old", 1, "1")])
    with pytest.raises(MovieLensFormatError) as caught:
        read_users(FileRef(str(path)))
    assert caught.value.line_number == 3
    assert str(caught.value) == f"{path}:3: age 'old' is not an integer: '3::M::old::1::1'"


def test_read_users_duplicate_id(tmp_path: Path) -> None:
    lines = [USER_LINES[1], "", _line(12, "F", 1, 1, "1"), _line(12, "M", 1, 1, "2")]
    path = _write(tmp_path / USERS_FILE, lines)
    with pytest.raises(MovieLensFormatError) as caught:
        read_users(FileRef(str(path)))
    assert caught.value.line_number == 4
    assert caught.value.reason == "duplicate UserID 12 (first on line 3)"


def test_read_movies_duplicate_id(tmp_path: Path) -> None:
    path = _write(tmp_path / MOVIES_FILE, MOVIE_LINES + [_line(1, "Other (2000)", "Drama")])
    with pytest.raises(MovieLensFormatError, match=r":3: duplicate MovieID 1 \(first on line 1\)"):
        read_movies(FileRef(str(path)))


def test_reader_error_names_zip_member(tmp_path: Path) -> None:
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("ml-1m/" + MOVIES_FILE, "1::Toy Story (1995)::\n".encode(ML1M_ENCODING))
    with pytest.raises(MovieLensFormatError) as caught:
        read_movies(FileRef(str(archive), "ml-1m/" + MOVIES_FILE))
    assert caught.value.path == f"{archive}!ml-1m/{MOVIES_FILE}"
    assert str(caught.value).startswith(f"{archive}!ml-1m/{MOVIES_FILE}:1: no genres: ")


# --- input resolution --------------------------------------------------------------------------

def _zip(path: Path, members: dict[str, list[str]]) -> Path:
    with zipfile.ZipFile(path, "w") as out:
        for name, lines in members.items():
            out.writestr(name, "".join(line + "\n" for line in lines).encode(ML1M_ENCODING))
    return path


def _ml1m_members(prefix: str) -> dict[str, list[str]]:
    return {prefix + RATINGS_FILE: RATING_LINES, prefix + USERS_FILE: USER_LINES,
            prefix + MOVIES_FILE: MOVIE_LINES, prefix + "README": ["readme"]}


def test_file_ref_on_disk(tmp_path: Path) -> None:
    path = _write(tmp_path / RATINGS_FILE, RATING_LINES)
    ref = FileRef(str(path))
    assert ref.display_name == str(path) and ref.exists()
    assert ref.read_text() == "\n".join(RATING_LINES) + "\n"
    with ref.open_binary() as stream:
        assert stream.read() == ref.read_bytes()
    assert not FileRef(str(tmp_path / "missing.dat")).exists()


def test_resolve_zip_with_top_folder(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ml-1m.zip", _ml1m_members("ml-1m/"))
    source = resolve_source(str(archive))
    assert source == MovieLensSource(
        FileRef(str(archive), "ml-1m/" + RATINGS_FILE),
        FileRef(str(archive), "ml-1m/" + USERS_FILE),
        FileRef(str(archive), "ml-1m/" + MOVIES_FILE))
    assert source.ratings.display_name == f"{archive}!ml-1m/{RATINGS_FILE}"
    assert source.ratings.exists() and not FileRef(str(archive), "ml-1m/nope.dat").exists()
    assert list(iter_ratings(split_lines(source.ratings.read_text()), "r"))[1].movie_id == 661
    assert read_movies(source.movies)[2762].title == "Misérables, Les (1995)"
    with source.ratings.open_binary() as stream:
        assert stream.read() == source.ratings.read_bytes()


def test_resolve_zip_at_root_without_side_files(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "data.zip", {RATINGS_FILE: RATING_LINES, "other.dat": ["x"]})
    source = resolve_source(archive)
    assert source == MovieLensSource(FileRef(str(archive), RATINGS_FILE), None, None)


def test_resolve_zip_custom_ratings_name(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"top/train_ratings.dat": RATING_LINES,
                                        "top/" + USERS_FILE: USER_LINES})
    source = resolve_source(str(archive), ratings_name="train_ratings.dat")
    assert source.ratings.member == "top/train_ratings.dat"
    assert source.users == FileRef(str(archive), "top/" + USERS_FILE) and source.movies is None


def test_resolve_zip_errors(tmp_path: Path) -> None:
    no_ratings = _zip(tmp_path / "empty.zip", {"ml-1m/" + USERS_FILE: USER_LINES})
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(no_ratings))}.*{RATINGS_FILE}"):
        resolve_source(str(no_ratings))
    several = _zip(tmp_path / "two.zip", {"a/" + RATINGS_FILE: RATING_LINES,
                                          "b/" + RATINGS_FILE: RATING_LINES})
    pattern = f"{re.escape(str(several))} has several {RATINGS_FILE}.*a/.*b/"
    with pytest.raises(ValueError, match=pattern):
        resolve_source(str(several))
    not_zip = tmp_path / "ml-1m.zip"
    not_zip.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=f"{re.escape(str(not_zip))} is not a valid zip archive"):
        resolve_source(str(not_zip))


def test_resolve_folder(tmp_path: Path) -> None:
    for name, lines in _ml1m_members("").items():
        _write(tmp_path / name, lines)
    source = resolve_source(str(tmp_path))
    assert source == MovieLensSource(
        FileRef(str(tmp_path / RATINGS_FILE)), FileRef(str(tmp_path / USERS_FILE)),
        FileRef(str(tmp_path / MOVIES_FILE)))


def test_resolve_nested_folder(tmp_path: Path) -> None:
    for name, lines in _ml1m_members("ml-1m/").items():
        _write(tmp_path / name, lines)
    (tmp_path / "unrelated").mkdir()
    source = resolve_source(tmp_path)
    assert source.ratings == FileRef(str(tmp_path / "ml-1m" / RATINGS_FILE))
    assert source.users == FileRef(str(tmp_path / "ml-1m" / USERS_FILE))
    assert read_users(source.users)[2].zip_code == "55117-3842"


def test_resolve_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"no {RATINGS_FILE} in {re.escape(str(tmp_path))}"):
        resolve_source(str(tmp_path))
    _write(tmp_path / "a" / RATINGS_FILE, RATING_LINES)
    _write(tmp_path / "b" / RATINGS_FILE, RATING_LINES)
    pattern = f"several {RATINGS_FILE} files under {re.escape(str(tmp_path))}"
    with pytest.raises(ValueError, match=pattern):
        resolve_source(str(tmp_path))


def test_resolve_bare_ratings_file_with_side_files(tmp_path: Path) -> None:
    ratings = _write(tmp_path / "train_ratings.dat", RATING_LINES)
    _write(tmp_path / USERS_FILE, USER_LINES)
    _write(tmp_path / MOVIES_FILE, MOVIE_LINES)
    source = resolve_source(str(ratings))
    assert source == MovieLensSource(
        FileRef(str(ratings)), FileRef(str(tmp_path / USERS_FILE)),
        FileRef(str(tmp_path / MOVIES_FILE)))


def test_resolve_bare_ratings_file_alone(tmp_path: Path) -> None:
    ratings = _write(tmp_path / "only" / "train_ratings.dat", RATING_LINES)
    _write(tmp_path / USERS_FILE, USER_LINES)
    assert resolve_source(str(ratings)) == MovieLensSource(FileRef(str(ratings)), None, None)


def test_resolve_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / RATINGS_FILE
    with pytest.raises(FileNotFoundError, match=f"{re.escape(str(missing))} does not exist"):
        resolve_source(str(missing))


# --- chunking ----------------------------------------------------------------------------------

def _numbered_lines(data: bytes, first: int) -> list[tuple[int, bytes]]:
    text_lines = data.split(b"\n")
    if text_lines[-1] == b"":
        text_lines.pop()
    return list(enumerate(text_lines, first))


CHUNK_DATA = [
    b"",
    b"1::1::5::1\n",
    b"1::1::5::1",
    b"a\nb\nc\nd\ne\n",
    b"a\nb\nc\nd\ne",
    b"a\r\n\nb\r\n\n\nc\n",
    b"\n\n\n",
    "Mis\xe9rables\nx\x85y\n".encode(ML1M_ENCODING),
]


@pytest.mark.parametrize("data", CHUNK_DATA)
@pytest.mark.parametrize("target_lines", [1, 2, 3, 100])
def test_split_into_chunks_covers_data(data: bytes, target_lines: int) -> None:
    chunks = split_into_chunks(data, target_lines)
    assert b"".join(data[start:end] for start, end, _ in chunks) == data
    assert [end for _, end, _ in chunks[:-1]] == [start for start, _, _ in chunks[1:]]
    expected = _numbered_lines(data, 1)
    rebuilt: list[tuple[int, bytes]] = []
    for index, (start, end, first) in enumerate(chunks):
        assert start < end
        assert start == 0 or data[start - 1:start] == b"\n"
        piece = _numbered_lines(data[start:end], first)
        assert len(piece) == target_lines or index == len(chunks) - 1
        rebuilt.extend(piece)
    assert rebuilt == expected
    assert count_lines(data) == len(expected)


def test_split_into_chunks_line_numbers() -> None:
    data = b"l1\nl2\nl3\nl4\nl5"
    assert split_into_chunks(data, 2) == [(0, 6, 1), (6, 12, 3), (12, 14, 5)]
    assert split_into_chunks(data + b"\n", 5) == [(0, 15, 1)]
    assert split_into_chunks(b"", 3) == []


def test_split_into_chunks_feeds_iter_ratings_with_exact_line_numbers() -> None:
    lines = [_line(user, 10, 4, 1000 + user) for user in range(1, 8)]
    lines[5] = _line(6, 10, "bad", 1006)
    data = ("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:])).encode(ML1M_ENCODING)
    errors = []
    for start, end, first in split_into_chunks(data, 3):
        text = data[start:end].decode(ML1M_ENCODING)
        errors += [error for _, _, error in iter_rating_results(split_lines(text), "r", first)
                   if error is not None]
    assert [(error.line_number, error.line) for error in errors] == [(7, lines[5])]


def test_split_into_chunks_rejects_zero_target() -> None:
    with pytest.raises(ValueError, match="target_lines"):
        split_into_chunks(b"a\n", 0)

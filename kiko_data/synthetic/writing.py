"""Write the files of each layout exactly as GroupLens ships them.

Encodings, separators, headers and row order follow the releases; every file is written through
a temporary file and a rename, in blocks of rows so memory stays bounded.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from kiko.data.movielens import ml100k, ml10m, ml1m, mlcsv

_BLOCK_ROWS = 500_000


def _write_rows(path: Path, rows: Iterator[str], encoding: str) -> int:
    """Write text rows (newline-terminated) via a temporary file and rename; return the bytes."""
    tmp = path.with_name(path.name + ".tmp")
    size = 0
    with open(tmp, "wb") as f:
        for block in rows:
            data = block.encode(encoding)
            f.write(data)
            size += len(data)
    os.replace(tmp, path)
    return size


def _formatted(template: str, columns: Sequence[Sequence]) -> Iterator[str]:
    """Blocks of `template % row` lines from parallel columns (bounded memory)."""
    n = len(columns[0])
    for start in range(0, n, _BLOCK_ROWS):
        block = [column[start:start + _BLOCK_ROWS] for column in columns]
        block = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in block]
        flat = [v for row in zip(*block) for v in row]
        yield (template * (len(flat) // len(columns))) % tuple(flat)


def _csv_rows(header: str, columns: Sequence[Sequence]) -> Iterator[str]:
    """A header and CSV-quoted rows (titles with commas or quotes, as GroupLens writes them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    out.write(header + "\n")
    writer.writerows(zip(*columns))
    yield out.getvalue()


def _rating_text(ratings: np.ndarray, layout: str) -> list:
    """Ratings as each release writes them: `4` (ML-100K, ML-1M, ML-10M), `4.0` (CSV)."""
    values = np.unique(ratings)
    if layout == mlcsv.LAYOUT.name:
        names = {v: f"{v:.1f}" for v in values.tolist()}
    else:
        names = {v: f"{v:g}" for v in values.tolist()}
    return [names[v] for v in ratings.tolist()]


# Titles in scripts latin-1 cannot encode, for the UTF-8 layouts (ML-10M and later).
_UTF8_ORIGINAL_TITLES = ("千と千尋の神隠し", "Амели с Монмартра", "Ο Θίασος", "올드보이",
                         "Ödön & Şükrü", "Cidade de Deus — Rio")


def _utf8_titles(titles: list[str], positions: Sequence[int]) -> list[str]:
    """Every 50th title of the catalogue gets an original title in a script latin-1 cannot
    hold (`positions`: each movie's place in the whole catalogue)."""
    out = list(titles)
    for k, i in enumerate(positions):
        if i >= 7 and (i - 7) % 50 == 0:
            head, year = out[k][:-7], out[k][-7:]  # "Title (YYYY)" -> "Title", " (YYYY)"
            out[k] = f"{head} ({_UTF8_ORIGINAL_TITLES[i % len(_UTF8_ORIGINAL_TITLES)]}){year}"
    return out


def _release_genres(genre_text: list[str], positions: Sequence[int]) -> list[str]:
    """ML-10M's and later vocabularies: `Children`, some `IMAX`, a few `(no genres listed)`."""
    out = []
    for i, text in zip(positions, genre_text):
        text = text.replace("Children's", "Children")
        if i % 97 == 3:
            text += "|IMAX"
        if i % 211 == 5:
            text = "(no genres listed)"
        out.append(text)
    return out


_ML100K_OCCUPATIONS = (  # ML-1M occupation code -> the nearest ML-100K occupation name
    "other", "educator", "artist", "administrator", "student", "other", "healthcare",
    "executive", "other", "homemaker", "student", "lawyer", "programmer", "retired",
    "marketing", "scientist", "other", "engineer", "technician", "none", "writer")
_AGE_GROUP_YEARS = {1: (7, 17), 18: (18, 24), 25: (25, 34), 35: (35, 44), 45: (45, 49),
                    50: (50, 55), 56: (56, 73)}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def ages_in_years(rng: np.random.Generator, age_codes: Sequence[int]) -> list:
    """ML-100K's ages in years, drawn within each user's ML-1M age group."""
    return [rng.integers(lo, hi + 1) for lo, hi in
            (_AGE_GROUP_YEARS[a] for a in np.asarray(age_codes).tolist())]


def write_layout(out: Path, layout: str, rng: np.random.Generator, ratings: dict, users: dict,
                  movies: dict) -> dict:
    """Write the files of `layout`; return {file name: path} of what was written.

    `movies` may hold `position` (each movie's place in the whole catalogue, which decides its
    release-specific decorations) and `users` may hold `years` (ML-100K ages), so that a subset
    of the catalogue or of the users is written exactly as in the whole data set (spans).
    """
    written = {}
    positions = np.asarray(movies.get("position", np.arange(len(movies["id"])))).tolist()

    def write(name: str, rows: Iterator[str], encoding: str) -> None:
        path = out / name
        _write_rows(path, rows, encoding)
        written[name] = path

    rating_text = _rating_text(ratings["rating"], layout)
    ids = [ratings["user"], ratings["movie"], rating_text, ratings["timestamp"]]
    if layout == ml100k.LAYOUT.name:
        order = rng.permutation(len(rating_text))  # u.data is in no particular order
        write(ml100k.RATINGS_FILE, _formatted("%s\t%s\t%s\t%s\n",
                                              [np.asarray(c, dtype=object)[order] for c in ids]),
              ml100k.ENCODING)
        years = users["years"] if "years" in users else ages_in_years(rng, users["age"])
        write(ml100k.USERS_FILE, _formatted("%s|%s|%s|%s|%s\n", [
            users["id"], years, users["gender"],
            [_ML100K_OCCUPATIONS[o] for o in users["occupation"].tolist()], users["zip"]]),
              ml100k.ENCODING)
        flags = ["|".join("1" if g in row.split("|") else "0" for g in ml100k.GENRES)
                 for row in movies["genres"]]
        dates = [f"{1 + i % 28:02d}-{_MONTHS[i % 12]}-{year}"
                 for i, year in zip(positions, movies["year"].tolist())]
        urls = [f"http://us.imdb.com/M/title-exact?{i}" for i in movies["id"].tolist()]
        write(ml100k.MOVIES_FILE, _formatted("%s|%s|%s||%s|%s\n", [
            movies["id"], movies["title"], dates, urls, flags]), ml100k.ENCODING)
    elif layout == ml1m.LAYOUT.name:
        write(ml1m.RATINGS_FILE, _formatted("%s::%s::%s::%s\n", ids), ml1m.ENCODING)
        write(ml1m.USERS_FILE, _formatted("%s::%s::%s::%s::%s\n", [
            users["id"], users["gender"], users["age"], users["occupation"], users["zip"]]),
              ml1m.ENCODING)
        write(ml1m.MOVIES_FILE, _formatted("%s::%s::%s\n", [
            movies["id"], movies["title"], movies["genres"]]), ml1m.ENCODING)
    elif layout == ml10m.LAYOUT.name:
        write(ml1m.RATINGS_FILE, _formatted("%s::%s::%s::%s\n", ids), ml10m.ENCODING)
        write(ml1m.MOVIES_FILE, _formatted("%s::%s::%s\n", [
            movies["id"], _utf8_titles(movies["title"], positions),
            _release_genres(movies["genres"], positions)]), ml10m.ENCODING)
        sample = np.arange(0, len(rating_text), max(1, len(rating_text) // 100))
        write(ml10m.TAGS_FILE, _formatted("%s::%s::%s::%s\n", [
            ratings["user"][sample], ratings["movie"][sample],
            ["classic" if i % 2 else "seen it" for i in range(len(sample))],
            ratings["timestamp"][sample]]), ml10m.ENCODING)
    else:
        order = np.lexsort((ratings["movie"], ratings["user"]))  # sorted by user, then movie
        write(mlcsv.RATINGS_FILE, _formatted(
            "%s,%s,%s,%s\n", [np.asarray(c, dtype=object)[order] for c in ids]), mlcsv.ENCODING)
        write(mlcsv.MOVIES_FILE, _csv_rows(mlcsv.MOVIES_HEADER, [
            movies["id"].tolist(), _utf8_titles(movies["title"], positions),
            _release_genres(movies["genres"], positions)]), mlcsv.ENCODING)
        written[mlcsv.RATINGS_FILE] = _prepend(out / mlcsv.RATINGS_FILE, mlcsv.RATINGS_HEADER)
    return written


def _prepend(path: Path, header: str) -> Path:
    """Put a header line before a written file's content (streaming copy)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(path, "rb") as source, open(tmp, "wb") as out:
        out.write(header.encode("ascii") + b"\n")
        shutil.copyfileobj(source, out, 4 << 20)
    os.replace(tmp, path)
    return path

"""Movie titles in ML-1M's shapes, built from word lists: ``Title (Year)``, unique.

Shapes include moved articles (``Noun, The``), accented foreign titles (``Misérables, Les``),
alternative titles in inner parentheses, commas, colons and sequels, so parsers meet them all.
"""

from __future__ import annotations

import numpy as np

_ADJECTIVES = (
    "Lost", "Silent", "Last", "Broken", "Golden", "Dark", "Wild", "Secret", "Little", "Sweet",
    "Bitter", "Crimson", "Hidden", "Eternal", "Fallen", "Blue", "Midnight", "Frozen", "Burning",
    "Lonely", "Strange", "Brave", "Quiet", "Savage", "Electric", "Dangerous", "Perfect",
    "Endless", "Naked", "Sacred", "Crazy", "Invisible", "American", "Big", "Long", "Deadly")
_NOUNS = (
    "City", "River", "Heart", "Night", "Summer", "Road", "Kingdom", "Dream", "Stranger",
    "Garden", "Island", "Shadow", "Storm", "Game", "Mirror", "Angel", "Train", "Harvest",
    "Empire", "Journey", "Window", "Circus", "Ocean", "Forest", "Bride", "Soldier", "Detective",
    "Machine", "Letter", "Hunter", "Sister", "Thief", "Promise", "Winter", "Voyage", "Mountain",
    "Ghost", "Stone", "Widow", "Prophet", "Highway", "Planet", "Dragon", "Affair", "Party")
_NAMES = (
    "Jack", "Mary", "Sam", "Lola", "Bobby", "Harry", "Dolores", "Max", "Rosa", "Billy", "Amélie",
    "José", "Jürgen", "Zoë", "Björn", "Inés", "François", "Chloé", "Muriel", "Otis")
# Foreign titles (latin-1 only), with the article that ML-1M moves to the end.
_FOREIGN_TITLES = (
    ("Misérables", "Les"), ("Enfants du paradis", "Les"), ("Vie rêvée des anges", "La"),
    ("Niño del sol", "El"), ("Mädchen in Uniform", ""), ("Café des étoiles", "Le"),
    ("Amour fou", "L'"), ("Corazón salvaje", ""), ("Über den Wolken", ""),
    ("Ciudad perdida", "La"), ("Été meurtrier", "L'"), ("Señora de la noche", "La"),
    ("Götterdämmerung", ""), ("Année dernière à Marienbad", "L'"), ("Noël à Paris", ""),
    ("Fräulein Else", ""), ("Garçon boucher", "Le"), ("Año del diluvio", "El"),
    ("Blaue Engel", "Der"), ("Strada", "La"), ("Ragazzo di Calabria", "Il"),
    ("Pequeña mentira", "La"), ("Fête de la musique", "La"), ("Cité des enfants perdus", "La"))
_SEQUELS = (" 2", " II", " III", ": Part II", " 3")


def _foreign(pick) -> str:
    """A foreign title in ML-1M's form: ``Misérables, Les`` or ``Mädchen in Uniform``."""
    words, article = _FOREIGN_TITLES[pick(len(_FOREIGN_TITLES))]
    return f"{words}, {article}" if article else words


def _english(pick, sequel: str = "") -> str:
    """A short English title, sometimes with its article moved to the end as ML-1M does.

    ``sequel`` (e.g. ``": Part II"``) goes before a moved article: ``Godfather: Part II, The``.
    """
    shape = pick(4)
    if shape == 0:
        core = f"{_ADJECTIVES[pick(len(_ADJECTIVES))]} {_NOUNS[pick(len(_NOUNS))]}"
    elif shape == 1:
        core = f"{_NOUNS[pick(len(_NOUNS))]} of the {_NOUNS[pick(len(_NOUNS))]}"
    elif shape == 2:
        core = f"{_NAMES[pick(len(_NAMES))]}'s {_NOUNS[pick(len(_NOUNS))]}"
    else:
        core = _NOUNS[pick(len(_NOUNS))]
    core += sequel
    if shape != 2 and pick(3) == 0:
        indefinite = "An" if core[0] in "AEIOU" else "A"
        core = f"{core}, {'The' if pick(3) else indefinite}"
    return core


def _title(pick, shape: int) -> str:
    """A title (without year) of one of ML-1M's shapes; shapes 1 and 2 are non-ASCII."""
    if shape == 0:
        return _english(pick)
    if shape == 1:
        return _foreign(pick)
    if shape == 2:  # an English title with its original one in inner parentheses
        return f"{_english(pick)} ({_foreign(pick)})"
    if shape == 3:
        return _english(pick, _SEQUELS[pick(len(_SEQUELS))])
    if shape == 4:
        return f"{_NOUNS[pick(len(_NOUNS))]}: {_english(pick)}"
    if shape == 5:
        return f"{_NAMES[pick(len(_NAMES))]} and {_NAMES[pick(len(_NAMES))]}"
    if shape == 6:  # a list with commas and an ampersand
        return (f"{_NOUNS[pick(len(_NOUNS))]}, {_NOUNS[pick(len(_NOUNS))]} & "
                f"{_NOUNS[pick(len(_NOUNS))]}")
    return f"{_ADJECTIVES[pick(len(_ADJECTIVES))]} {_english(pick)} (a.k.a. {_english(pick)})"


_TITLE_SHAPE_P = (0.55, 0.10, 0.06, 0.08, 0.07, 0.05, 0.05, 0.04)


def draw_titles(rng: np.random.Generator, years: np.ndarray) -> list[str]:
    """``Title (Year)`` strings, unique, with every shape present once the catalogue allows.

    The first len(_TITLE_SHAPE_P) movies of a random order get one shape each, so even a tiny
    catalogue has accented, comma and inner-parenthesis titles to exercise parsers.
    """
    n_movies = len(years)
    shapes = rng.choice(len(_TITLE_SHAPE_P), n_movies, p=_TITLE_SHAPE_P)
    forced = rng.permutation(n_movies)[:len(_TITLE_SHAPE_P)]
    shapes[forced] = np.arange(len(forced))
    picks = iter(rng.integers(0, 1 << 30, 24 * n_movies + 64).tolist())

    def pick(n: int) -> int:
        return next(picks) % n

    titles, seen = [], set()
    for shape, year in zip(shapes.tolist(), years.tolist()):
        base = _title(pick, shape)
        title, k = f"{base} ({year})", 2
        while title in seen:
            title, k = f"{base} {k} ({year})", k + 1
        seen.add(title)
        titles.append(title)
    return titles

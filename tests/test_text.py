"""Text made safe for a terminal (kiko.text.printable) wherever data text is printed: tables,
`kiko inspect` views, the run summary's cells and quoted data lines in parse errors."""

import pytest

from kiko.data.movielens.records import MovieLensFormatError, quote_line
from kiko.inspect_views import VIEWS
from kiko.text import pairs, printable, table

# What a hostile movies.dat title may carry: clear screen, rename the window, bell, backspace,
# DEL, a C1 CSI, a right-to-left override.
HOSTILE = "Evil\x1b[2J\x1b]0;pwned\x07\x08\x7f\x9b[1m\u202e (2000)"
RAW = ("\x1b", "\x07", "\x08", "\x7f", "\x9b", "\u202e")


def _has_raw(text):
    return any(c in text for c in RAW)


def test_printable_escapes_controls_and_keeps_ordinary_text():
    shown = printable(HOSTILE)
    assert not _has_raw(shown) and shown.isprintable()
    for escaped in ("\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x08", "\\x7f", "\\x9b", "\\u202e"):
        assert escaped in shown
    assert printable("line\nbreak\ttab") == "line\\nbreak\\ttab"
    for ordinary in ("Fête (1999)", "東京物語 (1953)", "Amélie|Comedy", "back\\slash", ""):
        assert printable(ordinary) == ordinary


def test_tables_and_pairs_escape_cells_and_stay_aligned():
    text = table(["TITLE", "RATING"], [[HOSTILE, 3.5], ["Fête (1999)", 4.0]])
    assert not _has_raw(text) and "Fête (1999)" in text
    header, *rows = text.splitlines()
    column = header.index("RATING")
    assert [row[column:].strip() for row in rows] == ["3.5000", "4.0000"]
    assert not _has_raw(pairs([("title", HOSTILE), ("genres", ["Drama\x1b[31m", "War"])]))


@pytest.mark.parametrize("view, result", [
    ("pushed", {"pushed": True, "destination": f"/serving/{HOSTILE}", "version": "1",
                "model_id": 3, "model_uri": "/m", "run_id": "r", "pushed_at": "now",
                "destination_exists": False,
                "latest_attempt": f"run r failed: bad line {HOSTILE}"}),
    ("pushed", {"pushed": False, "reason": f"run r failed at ExampleGen: {HOSTILE}"}),
    ("runs", [{"run_id": f"r{HOSTILE}", "status": "FAILED", "started": "now",
               "duration_s": 1.0, "executions": 1, "cached": 0, "not_run": [HOSTILE],
               "nodes": [{"node_id": HOSTILE, "state": "FAILED", "execution_id": 1,
                          "started": "now", "duration_s": 1.0}]}]),
])
def test_inspect_views_print_no_raw_control_characters(view, result, capsys):
    VIEWS[view][1](result)
    out = capsys.readouterr().out
    assert out and not _has_raw(out) and "\\x1b]0;pwned\\x07" in out


def test_quoted_data_lines_in_parse_errors_are_escaped():
    line = f"1::{HOSTILE}::Drama"
    assert not _has_raw(quote_line(line)) and "\\x1b[2J" in quote_line(line)
    long_line = "\x1b" * 500
    assert not _has_raw(quote_line(long_line)) and "(500 characters)" in quote_line(long_line)
    message = str(MovieLensFormatError("movies.dat", 7, line, "expected 3 fields"))
    assert message.startswith("movies.dat:7: expected 3 fields: ") and not _has_raw(message)

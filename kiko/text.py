"""Plain-text formatting shared by the operator's tools: cells, durations, aligned tables and
key-value pairs (tabulate), the note on ML Metadata ids, and text made safe for a terminal.

Text from data files (titles, genres, data lines, paths) may hold control characters that a
terminal would act on (clear the screen, rename the window); everything printed as a table or
through `echo` shows them escaped. JSON output is printed exact, not through these.
"""

from typing import Any, Optional, Sequence, TextIO, Tuple

from tabulate import tabulate

IDS_NOTE = ("Ids are ML Metadata ids; an artifact's folder is numbered by the execution that "
            "wrote it (Model 11 may live in Trainer/model/15).")


def printable(text: str) -> str:
    """`text` with every character a terminal would act on or hide (C0 and C1 controls, DEL,
    line and paragraph separators, bidirectional and zero-width format characters) written as
    Python escapes it (`\\x1b`, `\\n`, `\\u202e`); printable text, accents and all, is
    kept as is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def echo(text: Any = "", file: Optional[TextIO] = None) -> None:
    """Print `text` for a terminal: its lines, each made `printable`."""
    print("\n".join(printable(line) for line in str(text).split("\n")), file=file)


def fmt(value: Any, digits: int = 4) -> str:
    """A cell (made `printable`): '-' for None, yes/no for booleans, fixed decimals for
    floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return printable(",".join(str(v) for v in value))
    return printable(str(value))


def duration(seconds: Optional[float]) -> str:
    """Seconds as 12.3s, 4m05s or 1h02m; '-' for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def tabulated(headers: Sequence[str], rows: Sequence[Sequence[Any]], tablefmt: str) -> str:
    """A tabulate table in `tablefmt` ("plain", "html"...), every cell formatted by `fmt`."""
    return tabulate([[fmt(c) for c in row] for row in rows], headers=list(headers),
                    tablefmt=tablefmt, disable_numparse=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> str:
    """An aligned plain-text table, every line indented by `indent`."""
    text = tabulated(headers, rows, "plain")
    return "\n".join(indent + line.rstrip() for line in text.splitlines())


def pairs(items: Sequence[Tuple[str, Any]], indent: str = "") -> str:
    """Aligned `name  value` lines."""
    return table(["", ""], items, indent).split("\n", 1)[1]

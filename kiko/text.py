"""Plain-text formatting shared by the operator's tools: cells, durations, aligned tables and
key-value pairs (tabulate), and the note on ML Metadata ids."""

from typing import Any, Optional, Sequence, Tuple

from tabulate import tabulate

IDS_NOTE = ("Ids are ML Metadata ids; an artifact's folder is numbered by the execution that "
            "wrote it (Model 11 may live in Trainer/model/15).")


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: '-' for None, yes/no for booleans, fixed decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


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

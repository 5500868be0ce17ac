"""Spans on disk: how a folder of spans is named and how `--data` names spans.

A folder of spans holds one MovieLens data set per span, each in its release's layout with its
side files: `span-1/`, `span-2/`, ... (folders) or `span-1.zip`, ... (zips). TFX's ExampleGen
reads them through an input pattern with the `{SPAN}` placeholder (`span-{SPAN}`); `{SPAN:N}`
is used when the numbers are zero-padded to N digits. A pattern may also name a file inside each
span (`span-{SPAN}/ratings.csv`) and carry `{VERSION}`. Pure functions: no Beam, no TensorFlow.
"""

from __future__ import annotations

import os
import re
from typing import Iterable, Optional, Tuple

SPAN_PREFIX = "span-"
SPAN_PLACEHOLDER = "{SPAN"  # `{SPAN}` or `{SPAN:N}`
VERSION_PLACEHOLDER = "{VERSION"
_SPAN_NAME = re.compile(r"^span-(\d+)(\.zip)?$")


def span_dir_name(span: int) -> str:
    """The folder name of span `span` as kiko writes it (`span-3`)."""
    if span < 0:
        raise ValueError(f"a span number is >= 0, got {span}")
    return f"{SPAN_PREFIX}{span}"


def has_placeholders(text: str) -> bool:
    """Whether `text` is an input pattern with a span or version placeholder."""
    return SPAN_PLACEHOLDER in text or VERSION_PLACEHOLDER in text


def spans_pattern(names: Iterable[str]) -> Optional[str]:
    """The `{SPAN}` pattern of a folder whose entries are `names`, if they are spans.

    None when no entry is a span. Folders and zips are not mixed; zero-padded numbers must all
    have one width (that is what `{SPAN:N}` matches).
    """
    matches = [m for m in (_SPAN_NAME.match(name) for name in names) if m]
    if not matches:
        return None
    zips = {bool(m.group(2)) for m in matches}
    if len(zips) > 1:
        raise ValueError("a folder of spans holds span folders or span zips, not both: "
                         + ", ".join(sorted(m.group(0) for m in matches)[:6]))
    suffix = ".zip" if zips.pop() else ""
    padded = {len(m.group(1)) for m in matches if m.group(1).startswith("0")}
    if padded:
        widths = {len(m.group(1)) for m in matches}
        if len(widths) > 1:
            raise ValueError("zero-padded span numbers must all have one width, got "
                             + ", ".join(sorted(m.group(0) for m in matches)[:6]))
        return f"{SPAN_PREFIX}{{SPAN:{widths.pop()}}}{suffix}"
    return f"{SPAN_PREFIX}{{SPAN}}{suffix}"


def split_pattern(data: str) -> Tuple[str, str]:
    """(input_base, pattern) of a `--data` value holding placeholders.

    input_base is the longest leading folder without placeholders; the rest is the pattern TFX
    resolves under it: `data/span-{SPAN}/ratings.csv` -> (`data`, `span-{SPAN}/ratings.csv`).
    """
    parts = data.rstrip("/").split("/")
    for index, part in enumerate(parts):
        if has_placeholders(part):
            base = "/".join(parts[:index]) or (os.sep if data.startswith("/") else ".")
            return base, "/".join(parts[index:])
    raise ValueError(f"{data!r} has no {{SPAN}} or {{VERSION}} placeholder")

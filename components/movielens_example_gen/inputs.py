"""What an input split's pattern names: one data set (zip, folder or ratings file) under
input_base. Shared by the driver (which fingerprints those files) and the executor (which
reads them); no Beam here."""

from tfx.dsl.io import fileio

from kiko.data.movielens.files import join
from kiko.data.movielens.source import Source, resolve_source

WHOLE_INPUT_BASE = "."  # the split pattern naming input_base itself


def resolve_pattern(input_base: str, split_pattern: str, layout: str) -> Source:
    """The data set an input split's pattern names (one zip, folder or ratings file)."""
    if split_pattern == WHOLE_INPUT_BASE:
        return resolve_source(input_base, layout)
    matches = sorted(fileio.glob(join(input_base, split_pattern)))
    if len(matches) != 1:
        raise ValueError(
            f"split pattern {split_pattern!r} under {input_base} must match exactly one "
            f"ratings file, folder or zip, matched {len(matches)}: {matches[:5]}")
    return resolve_source(matches[0], layout)


def input_name(split_pattern: str) -> str:
    """A file-name-safe name of an input split pattern (for its report files)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in split_pattern)

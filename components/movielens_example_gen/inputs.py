"""What an input split's pattern names: one data set (zip, folder or ratings file) under
input_base. Shared by the driver (which fingerprints those files) and the executor (which
reads them); no Beam here.

A pattern with TFX's placeholders (`span-{SPAN}`, `span-{SPAN:2}.zip`,
`span-{SPAN}/v{VERSION}/ratings.csv`) names one data set per span; TFX's FileBasedDriver picks
the span (the newest, or the one of `range_config`) and rewrites the pattern before the
executor runs, so the executor and the fingerprint only ever see a resolved pattern.
`resolve_span` does the same resolution ahead of a run (for the runner: which span, which
layout and side files).
"""

import re
from typing import NamedTuple, Optional

from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2

from kiko.components._tfx_internal import FileBasedInputProcessor
from kiko.data.movielens.files import join
from kiko.data.movielens.source import Source, resolve_source

WHOLE_INPUT_BASE = "."  # the split pattern naming input_base itself
# TFX's placeholders in a split pattern (utils.SPAN_FULL_REGEX, VERSION_FULL_REGEX, DATE_SPECS).
_PLACEHOLDER = re.compile(r"\{(SPAN|VERSION)(:[^}]*)?\}|\{(YYYY|MM|DD)\}")


class SpanNotFoundError(FileNotFoundError):
    """No span under input_base matches a split pattern (or not the span asked for)."""


def resolve_pattern(input_base: str, split_pattern: str, layout: str) -> Source:
    """The data set an input split's resolved pattern names (one zip, folder or ratings file;
    the side files of its layout are found beside its ratings file)."""
    if split_pattern == WHOLE_INPUT_BASE:
        return resolve_source(input_base, layout)
    if _PLACEHOLDER.search(split_pattern):
        raise ValueError(
            f"split pattern {split_pattern!r} under {input_base} still holds placeholders: "
            "MovieLensExampleGen's driver resolves them to one span before the executor runs "
            "(run the component through a TFX orchestrator, or resolve it with resolve_span)")
    matches = sorted(fileio.glob(join(input_base, split_pattern)))
    if len(matches) != 1:
        raise ValueError(
            f"split pattern {split_pattern!r} under {input_base} must match exactly one "
            f"ratings file, folder or zip, matched {len(matches)}: {matches[:5]}")
    return resolve_source(matches[0], layout)


class ResolvedSpan(NamedTuple):
    """One span of a pattern with placeholders, as TFX's ExampleGen driver resolves it."""

    span: int
    version: Optional[int]  # None when the pattern has no {VERSION}
    pattern: str  # the split pattern with the placeholders filled in
    source: Source


def span_range_config(span: Optional[int]) -> Optional[range_config_pb2.RangeConfig]:
    """ExampleGen's range_config ingesting span `span` only; None (the newest span) for None."""
    if span is None:
        return None
    if span < 0:
        raise ValueError(f"a span number is >= 0, got {span}")
    return range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
        start_span_number=span, end_span_number=span))


def resolve_span(input_base: str, pattern: str, layout: str,
                 span: Optional[int] = None) -> ResolvedSpan:
    """The newest span (or span `span`) under `input_base` matching `pattern`, resolved with
    TFX's own FileBasedInputProcessor; SpanNotFoundError names the folder and the pattern."""
    processor = FileBasedInputProcessor(
        input_base, [example_gen_pb2.Input.Split(name="single_split", pattern=pattern)],
        span_range_config(span))
    try:
        found, version = processor.resolve_span_and_version()
    except ValueError as error:
        which = "span" if span is None else f"span {span}"
        if "Cannot find matching" in str(error):
            raise SpanNotFoundError(
                f"no {which} in {input_base} matches the pattern {pattern!r}") from None
        raise ValueError(f"the spans in {input_base} matching {pattern!r}: {error}") from error
    resolved = processor.get_pattern_for_span_version(pattern, found, version)
    return ResolvedSpan(found, version, resolved, resolve_pattern(input_base, resolved, layout))


def input_name(split_pattern: str) -> str:
    """A file-name-safe name of an input split pattern (for its report files)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in split_pattern)

"""Errors of MovieLensExampleGen's executor, importable without Beam or TensorFlow, and the
one line a user sees for them."""

import re
from typing import Optional

from kiko.data.movielens.records import MovieLensFormatError


class MalformedLineError(ValueError):
    """A malformed line: `file:line: reason: 'line'`.

    It takes one argument: Beam rebuilds a failing step's exception from args[0] to add the
    step's name.
    """


class DataCheckError(RuntimeError):
    """The examples cannot be trusted: lost by the runner, an empty split, too many rejects."""


# The last line of a traceback of an error whose message is complete for a user.
_USER_ERROR = re.compile(r"^(?:[\w.]+\.)?(?:MalformedLineError|DataCheckError): (.*)$", re.M)
_MALFORMED = re.compile(r"^(?:[\w.]+\.)?MalformedLineError: (.*)$", re.M)
# What Beam appends to the message of an error raised inside a step.
_BEAM_STEP = re.compile(r" \[while running '.*'\]$")


def user_line(text: str) -> str:
    """The line a user sees for a failure's text (an exception's message or a recorded
    traceback): its last line, without the class name of this component's errors or the Beam
    step that Beam appended."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    match = _USER_ERROR.match(last)
    return _BEAM_STEP.sub("", match.group(1) if match else last)


def malformed_line_message(error: BaseException) -> Optional[str]:
    """`file:line: reason: 'line'` when a malformed line (of any file) failed the Beam pipeline
    that raised `error`, else None. An in-process runner raises the error rebuilt with the step's name (the
    original is in its context); a multi-process one, a RuntimeError holding the worker's
    traceback as text."""
    link: Optional[BaseException] = error
    seen = set()
    while link is not None and id(link) not in seen:
        if isinstance(link, (MalformedLineError, MovieLensFormatError)):
            return _BEAM_STEP.sub("", str(link).strip())
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    found = _MALFORMED.findall(str(error))
    return _BEAM_STEP.sub("", found[-1].strip()) if found else None

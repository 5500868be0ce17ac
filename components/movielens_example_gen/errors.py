"""Errors of MovieLensExampleGen's executor, importable without Beam or TensorFlow."""


class MalformedLineError(ValueError):
    """A malformed line: `file:line: reason: 'line'`.

    It takes one argument: Beam rebuilds a failing step's exception from args[0] to add the
    step's name.
    """


class DataCheckError(RuntimeError):
    """The examples cannot be trusted: lost by the runner, an empty split, too many rejects."""

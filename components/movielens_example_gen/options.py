"""Options of MovieLensExampleGen, importable without TFX (for command-line parsers).

They travel to the executor in the component's `custom_config` (a `google.protobuf.Struct`).
"""

MALFORMED_FAIL = "fail"  # the run fails at the first malformed line, naming file:line and reason
MALFORMED_SKIP = "skip"  # malformed lines are skipped, counted and written to REJECTED_DIR
MALFORMED_CHOICES = (MALFORMED_FAIL, MALFORMED_SKIP)

PARTITION_BY_RATING = "rating"  # each rating hashed on its own
PARTITION_BY_USER = "user"  # all of a user's ratings land in one split
PARTITION_CHOICES = (PARTITION_BY_RATING, PARTITION_BY_USER)

# custom_config keys.
MALFORMED_LINES_KEY = "malformed_lines"
MAX_REJECTED_FRACTION_KEY = "max_rejected_fraction"
LAYOUT_KEY = "layout"
CODE_VERSION_KEY = "code_version"  # only keys the cache (see component.make_custom_config)

# With --malformed-lines skip, a run fails when more than this share of a file's lines is
# rejected: such a file is most likely in another format, not a file with a few bad lines.
DEFAULT_MAX_REJECTED_FRACTION = 0.01

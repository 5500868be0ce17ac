"""Option names of MovieLensExampleGen, importable without TFX (for command-line parsers)."""

MALFORMED_FAIL = "fail"  # the run fails at the first malformed line, naming file:line and reason
MALFORMED_SKIP = "skip"  # malformed lines are skipped, counted and written to REJECTED_DIR
MALFORMED_CHOICES = (MALFORMED_FAIL, MALFORMED_SKIP)

PARTITION_BY_RATING = "rating"  # each rating hashed on its own
PARTITION_BY_USER = "user"  # all of a user's ratings land in one split
PARTITION_CHOICES = (PARTITION_BY_RATING, PARTITION_BY_USER)

"""Component spec and option names of MovieLensExampleGen."""

from components._tfx_internal import ExecutionParameter, FileBasedExampleGenSpec

MALFORMED_LINES_KEY = "malformed_lines"

# Inside the Examples artifact, beside the Split-* folders: one text file per input split.
REJECTED_DIR = "rejected_lines"
# Custom property of the Examples artifact in ML Metadata: how many lines were skipped.
REJECTED_LINES_PROPERTY = "rejected_lines"


class MovieLensExampleGenSpec(FileBasedExampleGenSpec):
    """FileBasedExampleGen's spec plus the malformed-line policy."""

    PARAMETERS = {
        **FileBasedExampleGenSpec.PARAMETERS,
        MALFORMED_LINES_KEY: ExecutionParameter(type=str),
    }

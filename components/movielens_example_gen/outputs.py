"""Names of what MovieLensExampleGen writes besides the Split-* folders of its Examples artifact.

Inside the artifact folder: the quarantined lines, the dropped duplicates and the data-quality
report, and two working folders removed before the execution ends. Custom properties of the
artifact in ML Metadata: the report as JSON and its main counts.
"""

REJECTED_DIR = "rejected_lines"  # one text file per input split: `file:line: reason: 'line'`
DUPLICATES_DIR = "duplicates"  # one text file per input split: the dropped duplicate lines
QUALITY_DIR = "data_quality"  # the report (JSON) and the per-split statistics it is built from
QUALITY_FILE = "data_quality.json"

# Working folders: a decompressed copy of a zipped ratings file and the duplicate search's key
# files; the workers' progress marks (see progress.py).
STAGING_DIR = "_staging"
PROGRESS_DIR = "_progress"

# Custom properties of the Examples artifact.
DATA_QUALITY_PROPERTY = "data_quality"  # the whole report, JSON text
REJECTED_LINES_PROPERTY = "rejected_lines"
LINES_READ_PROPERTY = "lines_read"
DUPLICATES_EXACT_PROPERTY = "duplicates_exact"
DUPLICATES_CONFLICTING_PROPERTY = "duplicates_conflicting"
WITHOUT_USER_PROPERTY = "ratings_without_user"
WITHOUT_MOVIE_PROPERTY = "ratings_without_movie"
LAYOUT_PROPERTY = "layout"

"""What the data gate records of a span it let through: the SpanVerdict artifact type and its
verdicts. Beam- and TFDV-free, so that the operator tools load the type (ML Metadata readers
then build SpanVerdict artifacts, not ephemeral classes)."""

from tfx import types

# The type name (the Kubeflow v2 compiler wants `namespace.Name`).
SPAN_VERDICT_TYPE = "kiko.SpanVerdict"

VERDICT_PASSED = "passed"
VERDICT_FIRST_SPAN = "first_span"  # nothing earlier to compare with
VERDICT_DRIFT_WARNED = "drift_warned"  # drifted, let through by on_drift "warn"


class SpanVerdict(types.Artifact):
    """A span the data gate let through: custom properties span, version, examples_id,
    statistics_id, baseline_span (-1: none), verdict and drift (JSON, see drift.drift_report)."""

    TYPE_NAME = SPAN_VERDICT_TYPE

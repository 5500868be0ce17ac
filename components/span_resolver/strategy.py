"""Which spans a run reads besides the new one, resolved from ML Metadata.

TFX's SpanRangeStrategy keeps every Examples artifact in a span range: every version of a
re-ingested span, and spans the data gate stopped. kiko's window is made of validated spans only
(a SpanVerdict names their Examples artifact), the latest validated version of each:

- SpanWindowStrategy: the last `num_spans` validated spans (0: all), for the Trainer.
- DriftBaselineStrategy: the validated spans before the new one, and the statistics of the
  newest of them, for the data gate's drift check.

Both read channels of every artifact of a type the pipeline produced (plain `Channel`s with a
producer id), not only the current run's.
"""

from typing import Dict, List, Optional

from tfx import types
from tfx import v1 as tfx

import ml_metadata as mlmd

CURRENT_KEY = "current"
EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"
VERDICTS_KEY = "verdicts"


def span_of(artifact: types.Artifact) -> int:
    return artifact.get_int_custom_property("span")


def version_of(artifact: types.Artifact) -> int:
    return artifact.get_int_custom_property("version")


def _verdict_of(verdicts: List[types.Artifact]) -> Dict[int, types.Artifact]:
    """Examples artifact id -> its newest verdict."""
    newest: Dict[int, types.Artifact] = {}
    for verdict in sorted(verdicts, key=lambda a: a.id):
        newest[verdict.get_int_custom_property("examples_id")] = verdict
    return newest


def validated_spans(examples: List[types.Artifact], verdicts: List[types.Artifact]
                    ) -> Dict[int, types.Artifact]:
    """Span -> the Examples artifact of its latest validated version."""
    validated = _verdict_of(verdicts)
    latest: Dict[int, types.Artifact] = {}
    for artifact in examples:
        if artifact.id not in validated:
            continue
        span = span_of(artifact)
        best = latest.get(span)
        if best is None or (version_of(artifact), artifact.id) > (version_of(best), best.id):
            latest[span] = artifact
    return latest


def span_window(examples: List[types.Artifact], verdicts: List[types.Artifact],
                num_spans: int) -> List[types.Artifact]:
    """The last `num_spans` validated spans (0: all), oldest first."""
    latest = validated_spans(examples, verdicts)
    spans = sorted(latest)
    if num_spans > 0:
        spans = spans[-num_spans:]
    return [latest[span] for span in spans]


def drift_baseline(current: List[types.Artifact], examples: List[types.Artifact],
                   statistics: List[types.Artifact], verdicts: List[types.Artifact]
                   ) -> Dict[str, List[types.Artifact]]:
    """The validated spans before the current one (oldest first) and the statistics the gate
    recorded for the newest of them; both empty when there is none."""
    if not current:
        return {CURRENT_KEY: [], EXAMPLES_KEY: [], STATISTICS_KEY: []}
    new_span = span_of(current[0])
    earlier = {span: artifact for span, artifact in validated_spans(examples, verdicts).items()
               if span < new_span}
    if not earlier:
        return {CURRENT_KEY: list(current), EXAMPLES_KEY: [], STATISTICS_KEY: []}
    newest = earlier[max(earlier)]
    statistics_id = _verdict_of(verdicts)[newest.id].get_int_custom_property("statistics_id")
    return {CURRENT_KEY: list(current),
            EXAMPLES_KEY: [earlier[span] for span in sorted(earlier)],
            STATISTICS_KEY: [a for a in statistics if a.id == statistics_id]}


class SpanWindowStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Channels `examples` (all) and `verdicts` (all) -> `examples`: the window."""

    def __init__(self, num_spans: int = 0):
        if num_spans < 0:
            raise ValueError(f"num_spans must be >= 0 (0: all spans), got {num_spans}")
        self._num_spans = num_spans

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        window = span_window(input_dict.get(EXAMPLES_KEY, []),
                             input_dict.get(VERDICTS_KEY, []), self._num_spans)
        return {EXAMPLES_KEY: window, VERDICTS_KEY: []} if window else None


class DriftBaselineStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Channels `current` (this run's Examples), `examples`, `statistics` and `verdicts` (all)
    -> `current`, `examples` (earlier validated spans), `statistics` (the newest one's)."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        resolved = drift_baseline(input_dict.get(CURRENT_KEY, []),
                                  input_dict.get(EXAMPLES_KEY, []),
                                  input_dict.get(STATISTICS_KEY, []),
                                  input_dict.get(VERDICTS_KEY, []))
        return {**resolved, VERDICTS_KEY: []}

"""What the artifacts of a run hold at a glance: each node's outputs per run, the ExampleGen's
data-quality record, a split's statistics and the anomalies the ExampleValidator found."""

from typing import Any, Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tfx.types import artifact_utils, standard_artifacts

from kiko.components.movielens_example_gen.outputs import DATA_QUALITY_PROPERTY
from kiko.metadata.store import State, Store, custom, in_node_order, parse_json


def data_quality(examples) -> Optional[Dict[str, Any]]:
    """The ExampleGen's data-quality record of an Examples artifact (None when absent)."""
    record = parse_json(custom(examples, DATA_QUALITY_PROPERTY))
    return record if isinstance(record, dict) else None


def artifact_details(artifact) -> Dict[str, Any]:
    """The type-specific facts worth a glance: splits, rejected lines, blessed, pushed."""
    details: Dict[str, Any] = {}
    if "split_names" in (artifact.PROPERTIES or {}):
        details["splits"] = artifact_utils.decode_split_names(artifact.split_names)
    if isinstance(artifact, standard_artifacts.Examples):
        details["rejected_lines"] = custom(artifact, "rejected_lines")
    elif isinstance(artifact, standard_artifacts.ModelBlessing):
        details["blessed"] = bool(custom(artifact, "blessed", 0))
        details["model_id"] = custom(artifact, "current_model_id")
    elif isinstance(artifact, standard_artifacts.PushedModel):
        details["pushed"] = bool(custom(artifact, "pushed", 0))
        if details["pushed"]:
            details["destination"] = custom(artifact, "pushed_destination")
    return details


def _origin(execution, artifact) -> str:
    """new (written by this execution), cache (reused from an earlier run) or resolved."""
    if artifact.mlmd_artifact.create_time_since_epoch >= execution.create_time_since_epoch:
        return "new"
    return "cache" if execution.last_known_state == State.CACHED else "resolved"


def list_artifacts(store: Store, run_id: Optional[str] = None) -> List[Dict[str, Any]]:
    """The artifacts each node output per run (every run, or `run_id`: LookupError if unknown)."""
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    rows = []
    for run in runs:
        by_node = {store.node_of(x.id): x for x in store.executions(run=run.name)}
        for node in in_node_order(by_node):
            execution = by_node[node]
            for key, artifacts in sorted(store.outputs(execution.id).items()):
                for artifact in sorted(artifacts, key=lambda a: a.id):
                    rows.append({
                        "run_id": run.name, "node_id": node, "execution_id": execution.id,
                        "key": key, "type": artifact.type_name, "artifact_id": artifact.id,
                        "state": mlmd_pb2.Artifact.State.Name(artifact.mlmd_artifact.state),
                        "uri": artifact.uri,
                        "origin": _origin(execution, artifact), **artifact_details(artifact)})
    return rows


def load_statistics(statistics, split: str):
    """TFDV's view of one split of an ExampleStatistics artifact (TFX's own loader)."""
    from tfx.components.statistics_gen import stats_artifact_utils

    return stats_artifact_utils.load_statistics(statistics, split).get_default_slice()


def anomaly_lines(anomalies, examples=None) -> List[str]:
    """One line per anomaly in every split of an ExampleAnomalies artifact, with the extreme
    values the ExampleGen recorded for the examples."""
    from kiko.components.anomalies_gate.component import (
        describe_anomalies, extremes_of, read_anomalies)

    if anomalies is None:
        return []
    extremes = extremes_of(data_quality(examples) or {})
    return [line for split in artifact_utils.decode_split_names(anomalies.split_names)
            for line in describe_anomalies(read_anomalies(anomalies.uri, split), split,
                                           extremes)]

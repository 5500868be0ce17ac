"""A pipeline home's ML Metadata store opened read-only, and the small helpers every reader of
it shares: node order, times, and the properties TFX records on executions and artifacts.

Ids are ML Metadata ids. An artifact's folder is named after the id of the *execution* that
wrote it (TFX's layout), so Model 11 may live in `Trainer/model/15`.

ML Metadata records absolute paths. A home that was copied or moved (`cp -r home copy`) still
records the home it was written in; the store reads its own home's files instead: a recorded path
under a home the records were written in is resolved to the same relative path under the home the
store lives in (docs/operations.md), so a copy never reads, or serves, another home's files.
"""

import datetime
import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata import metadata_store as mlmd
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
from tfx.dsl.compiler import constants
from tfx.orchestration import data_types_utils
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.portable.mlmd import artifact_lib, execution_lib
# Loaded, TFX's artifact classes are what artifact_lib builds (Model, Examples, PushedModel...),
# and kiko's own (the data gate's SpanVerdict).
from tfx.types import standard_artifacts

from kiko.components.anomalies_gate import verdicts
from kiko.pipeline import configs
from kiko.pipeline import nodes

# kiko's own artifact types, loaded so that artifact_lib builds them (not ephemeral classes).
KIKO_ARTIFACT_TYPES = (verdicts.SpanVerdict,)

# Pipeline order of the nodes; nodes not named here follow.
NODE_ORDER = (nodes.EXAMPLE_GEN_ID, nodes.STATISTICS_GEN_ID, nodes.SCHEMA_GEN_ID,
              nodes.EXAMPLE_VALIDATOR_ID, nodes.DRIFT_BASELINE_ID, nodes.ANOMALIES_GATE_ID,
              nodes.SPAN_WINDOW_ID, nodes.BASE_MODEL_RESOLVER_ID, nodes.TRAINER_ID,
              nodes.MODEL_RESOLVER_ID, nodes.EVALUATOR_ID, nodes.PUSHER_ID)
State = mlmd_pb2.Execution.State
# The folder under a home that holds every artifact (configs.Paths), and the artifact property
# holding the Pusher's destination: both are paths the store resolves under its own home.
_ROOT_NAME = os.path.basename(configs.Paths("").pipeline_root)
_PUSHED_DESTINATION = "pushed_destination"


class StoreError(RuntimeError):
    """The metadata file exists but is not a readable ML Metadata database."""


class Store:
    """A read-only ML Metadata store of one pipeline, with the TFX handle `execution_lib` uses."""

    def __init__(self, metadata_path: str, pipeline_name: str = configs.PIPELINE_NAME):
        path = os.path.abspath(metadata_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no ML Metadata database at {path}")
        config = mlmd_pb2.ConnectionConfig()
        config.sqlite.filename_uri = path
        config.sqlite.connection_mode = mlmd_pb2.SqliteMetadataSourceConfig.READONLY
        try:
            mlmd.MetadataStore(config)  # fails fast, where the TFX handle would retry
        except RuntimeError as error:
            reason = str(error).rsplit(" query:", 1)[0]
            raise StoreError(f"{path} is not a readable ML Metadata database ({reason})") from error
        self.handle = tfx_metadata.Metadata(config).__enter__()
        self.mlmd = self.handle.store
        self.pipeline_name = pipeline_name
        self.home = os.path.dirname(path)
        self._written_in: Optional[List[str]] = None
        self._node_of: Optional[Dict[int, str]] = None
        self._run_of: Dict[int, Optional[str]] = {}

    def written_in(self) -> List[str]:
        """The homes other than this one that the records were written in (a copied or moved
        home's original), found from where the artifacts' URIs say the pipeline root was."""
        if self._written_in is None:
            marker = os.sep + _ROOT_NAME + os.sep
            homes = {a.uri.split(marker, 1)[0] for a in self.mlmd.get_artifacts()
                     if os.path.isabs(a.uri) and marker in a.uri}
            self._written_in = sorted((h for h in homes if h != self.home),
                                      key=len, reverse=True)
        return self._written_in

    def local(self, path: Optional[str]) -> Optional[str]:
        """A recorded path as this home holds it: under a home the records were written in,
        the same relative path under this home (whether or not it exists: a copy never reads
        the original's files); any other path as recorded."""
        if not path or not os.path.isabs(path) or _under(path, self.home):
            return path
        for written in self.written_in():
            if _under(path, written):
                return os.path.join(self.home, os.path.relpath(path, written))
        return path

    def _localized(self, artifacts):
        """TFX artifacts with their URI and pushed destination resolved under this home."""
        for artifact in artifacts:
            artifact.uri = self.local(artifact.uri)
            if artifact.has_custom_property(_PUSHED_DESTINATION):
                artifact.set_string_custom_property(_PUSHED_DESTINATION, self.local(
                    artifact.get_string_custom_property(_PUSHED_DESTINATION)))
        return artifacts

    def runs(self) -> List[mlmd_pb2.Context]:
        """Every pipeline run context, oldest first."""
        return sorted(self.mlmd.get_contexts_by_type(constants.PIPELINE_RUN_CONTEXT_TYPE_NAME),
                      key=lambda c: (c.create_time_since_epoch, c.id))

    def run(self, run_id: Optional[str] = None) -> Optional[mlmd_pb2.Context]:
        """The run named `run_id` (LookupError if none), or the latest (None if no run)."""
        if run_id is None:
            runs = self.runs()
            return runs[-1] if runs else None
        found = self.mlmd.get_context_by_type_and_name(
            constants.PIPELINE_RUN_CONTEXT_TYPE_NAME, run_id)
        if found is None:
            raise LookupError(f"no pipeline run {run_id!r} (see `kiko inspect runs`)")
        return found

    def executions(self, node: Optional[str] = None, run: Optional[str] = None,
                   input_of: Optional[int] = None,
                   output_of: Optional[int] = None) -> List[mlmd_pb2.Execution]:
        """Executions (oldest first) of a node, in a run, that read or wrote an artifact."""
        clauses = []
        if node is not None:
            clauses += [f'contexts_n.type = "{constants.NODE_CONTEXT_TYPE_NAME}"',
                        f'contexts_n.name = "{self.pipeline_name}.{node}"']
        if run is not None:
            clauses += [f'contexts_r.type = "{constants.PIPELINE_RUN_CONTEXT_TYPE_NAME}"',
                        f'contexts_r.name = "{run}"']
        for alias, artifact_id, kind in (("i", input_of, "INPUT"), ("o", output_of, "OUTPUT")):
            if artifact_id is not None:
                clauses += [f"events_{alias}.artifact_id = {int(artifact_id)}",
                            f"events_{alias}.type = {kind}"]
        options = mlmd.ListOptions(filter_query=" AND ".join(clauses) or None,
                                   order_by=mlmd.OrderByField.ID, is_asc=True)
        return list(self.mlmd.get_executions(list_options=options))

    def node_of(self, execution_id: int) -> str:
        if self._node_of is None:
            prefix = self.pipeline_name + "."
            self._node_of = {}
            for context in self.mlmd.get_contexts_by_type(constants.NODE_CONTEXT_TYPE_NAME):
                node = context.name[len(prefix):] if context.name.startswith(prefix) \
                    else context.name
                for execution in self.mlmd.get_executions_by_context(context.id):
                    self._node_of[execution.id] = node
        return self._node_of.get(execution_id, "?")

    def node_ids(self) -> List[str]:
        self.node_of(0)
        return in_node_order(self._node_of.values())

    def run_of(self, execution_id: int) -> Optional[str]:
        if execution_id not in self._run_of:
            runs = [c.name for c in self.mlmd.get_contexts_by_execution(execution_id)
                    if c.type == constants.PIPELINE_RUN_CONTEXT_TYPE_NAME]
            self._run_of[execution_id] = runs[0] if runs else None
        return self._run_of[execution_id]

    def inputs(self, execution_id: int) -> Dict[str, list]:
        found = execution_lib.get_input_artifacts(self.handle, execution_id)
        return {key: self._localized(artifacts) for key, artifacts in found.items()}

    def outputs(self, execution_id: int) -> Dict[str, list]:
        found = execution_lib.get_output_artifacts(self.handle, execution_id)
        return {key: self._localized(artifacts) for key, artifacts in found.items()}

    def artifact(self, artifact_id: int):
        try:
            return self._localized(artifact_lib.get_artifacts_by_ids(self.handle,
                                                                     [artifact_id]))[0]
        except ValueError:
            return None

    def artifacts(self, filter_query: str) -> list:
        """TFX artifacts matching an ML Metadata filter query, oldest first."""
        found = self.mlmd.get_artifacts(list_options=mlmd.ListOptions(
            filter_query=filter_query, order_by=mlmd.OrderByField.ID, is_asc=True))
        return self._localized(list(artifact_lib.get_artifacts_by_ids(
            self.handle, [a.id for a in found]))) if found else []

    def models(self) -> list:
        """Every Model artifact, oldest first."""
        return self.artifacts(f'type = "{standard_artifacts.Model.TYPE_NAME}"')

    def producer(self, artifact_id: int) -> Optional[mlmd_pb2.Execution]:
        """The execution that wrote the artifact (later, cached executions only reuse it)."""
        writers = self.executions(output_of=artifact_id)
        return writers[0] if writers else None


def open_store(metadata_path: str) -> Store:
    """A read-only store on an existing ML Metadata file (never creates one)."""
    return Store(metadata_path)


def _under(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def moment(ms: int) -> Optional[str]:
    """An ML Metadata time (ms since the epoch) in local time, None when unset."""
    if not ms:
        return None
    when = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return when.astimezone().isoformat(sep=" ", timespec="seconds")


def duration_s(executions) -> Optional[float]:
    """Seconds from the first execution's start to the last one's last update."""
    if not executions:
        return None
    return round((max(x.last_update_time_since_epoch for x in executions)
                  - min(x.create_time_since_epoch for x in executions)) / 1000, 3)


def in_node_order(node_ids) -> List[str]:
    unique = list(dict.fromkeys(node_ids))
    return [n for n in NODE_ORDER if n in unique] + [n for n in unique if n not in NODE_ORDER]


def exec_properties(execution: mlmd_pb2.Execution) -> Dict[str, Any]:
    """The execution's recorded exec properties (TFX keeps them as custom properties)."""
    return data_types_utils.build_value_dict(execution.custom_properties)


def parse_json(text: Any) -> Any:
    """A JSON property's value, None when it is not JSON text."""
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def first(artifacts: Dict[str, list], key: str):
    """The artifact under `key` of an input or output dict (the last when several)."""
    found = artifacts.get(key) or []
    return found[-1] if found else None


def custom(artifact, name: str, default: Any = None) -> Any:
    """An artifact's custom property, `default` when the artifact or the property is absent."""
    if artifact is None or not artifact.has_custom_property(name):
        return default
    return artifact.get_custom_property(name)


def succeeded(execution) -> bool:
    return execution_lib.is_execution_successful(execution)


def failed(execution) -> bool:
    return execution_lib.is_execution_failed(execution) or \
        execution_lib.is_execution_canceled(execution)

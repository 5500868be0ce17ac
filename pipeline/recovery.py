"""Clean-up after a killed run: what a dead runner left unfinished in ML Metadata and on disk.

While the home's lock is held no other runner is alive in the home, so every execution ML
Metadata still shows as NEW or RUNNING belongs to a dead runner: it is marked FAILED (aborted)
and its output folders are removed. Completed executions stay, so a re-run resumes from the cache.
"""

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from typing import List, Optional

from absl import logging

from kiko.pipeline.home_lock import Holder

# TFX and ML Metadata load TensorFlow (seconds): they are imported where needed, so that the
# runner's --help and its refusals stay instant.

# MLMD context types TFX writes: the pipeline, each run (name = run id), each node
# (name = '<pipeline>.<node id>').
_PIPELINE_CONTEXT = "pipeline"
_RUN_CONTEXT = "pipeline_run"
_NODE_CONTEXT = "node"
_UNFINISHED = "last_known_state = NEW OR last_known_state = RUNNING"
# TFX's layout under a node's folder (tfx.orchestration.portable.outputs_utils, whose helpers
# create the folders they name): outputs in '<key>/<execution id>'; '.system' holds the
# executor's output and temp files per execution id, and stateful working dirs named by a
# fresh uuid per execution.
_SYSTEM_DIR = ".system"
_EXECUTOR_DIR = "executor_execution"
_STATEFUL_DIR = "stateful_working_dir"
# The Pusher's exec property naming its destination (a PushDestination as JSON).
_PUSH_DESTINATION = "push_destination"
_PUSHED_MODEL = "PushedModel"


@dataclass
class Interrupted:
    """An execution a dead runner left unfinished, now marked FAILED; what was removed."""

    execution_id: int
    node_id: str
    run_id: str
    removed: List[str]


def _remove(path: str, removed: List[str]) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
    else:
        return
    removed.append(path)


def _orphaned_outputs(pipeline_root: str, node_id: str, execution_id: int) -> List[str]:
    """The folders TFX made for one execution: every output `<node>/<key>/<id>` and the
    executor's `.system/executor_execution/<id>` (its output file and temp dir)."""
    node_dir = os.path.join(pipeline_root, node_id)
    if not os.path.isdir(node_dir):
        return []
    paths = [os.path.join(node_dir, key, str(execution_id))
             for key in sorted(os.listdir(node_dir)) if key != _SYSTEM_DIR]
    paths.append(os.path.join(node_dir, _SYSTEM_DIR, _EXECUTOR_DIR, str(execution_id)))
    # The local launcher never records a stateful working dir's uuid, so a dead execution's
    # can be neither found by id nor reused: under the lock every one of the node's is stale.
    stateful = os.path.join(node_dir, _SYSTEM_DIR, _STATEFUL_DIR)
    if os.path.isdir(stateful):
        paths += [os.path.join(stateful, name) for name in sorted(os.listdir(stateful))]
    return paths


def _orphaned_pushes(store, execution) -> List[str]:
    """Serving versions a killed Pusher wrote but never recorded: the Pusher names a version by
    the Unix time of its push, so these are the unrecorded ones from its start on."""
    value = execution.custom_properties.get(_PUSH_DESTINATION)
    if value is None:
        return []
    base = json.loads(value.string_value).get("filesystem", {}).get("baseDirectory")
    if not base or not os.path.isdir(base):
        return []
    recorded = set()
    if _PUSHED_MODEL in {t.name for t in store.get_artifact_types()}:
        recorded = {os.path.normpath(a.custom_properties["pushed_destination"].string_value)
                    for a in store.get_artifacts_by_type(_PUSHED_MODEL)
                    if "pushed_destination" in a.custom_properties}
    started_s = execution.create_time_since_epoch // 1000
    return [os.path.join(base, name) for name in sorted(os.listdir(base))
            if name.isdigit() and int(name) >= started_s
            and os.path.normpath(os.path.join(base, name)) not in recorded]


def recover_interrupted_runs(metadata_path: str, pipeline_root: str,
                             previous: Optional[Holder] = None) -> List[Interrupted]:
    """Marks every execution left NEW or RUNNING FAILED (aborted) and removes its output folders;
    `previous` is the lock's last holder when it never released the lock (named in the message).

    Call only while holding the home's lock: then no live runner owns those executions. The
    re-run is unaffected otherwise: completed executions stay in the cache.
    """
    if not os.path.isfile(metadata_path):
        return []
    from google.rpc import code_pb2
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
    from tfx import v1 as tfx

    from kiko.components import _tfx_internal as tfx_internal

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    found: List[Interrupted] = []
    with tfx_internal.Metadata(config) as handle:
        store = handle.store
        context_types = {t.id: t.name for t in store.get_context_types()}
        unfinished = store.get_executions(
            list_options=metadata_store.ListOptions(filter_query=_UNFINISHED))
        for execution in sorted(unfinished, key=lambda x: x.id):
            contexts = store.get_contexts_by_execution(execution.id)
            names = {}
            for context in contexts:
                names.setdefault(context_types.get(context.type_id), context.name)
            pipeline = names.get(_PIPELINE_CONTEXT, "")
            node_context = names.get(_NODE_CONTEXT, "?")
            node_id = (node_context[len(pipeline) + 1:]
                       if pipeline and node_context.startswith(pipeline + ".") else node_context)
            run_id = names.get(_RUN_CONTEXT, "?")
            runner = (f" ({previous.describe()})"
                      if previous is not None and previous.run_id == run_id else "")
            message = (f"aborted: the runner of run {run_id}{runner} stopped while {node_id} "
                       f"was {mlmd_pb2.Execution.State.Name(execution.last_known_state)} "
                       f"(killed or crashed); marked failed by pid {os.getpid()} at "
                       f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
            output = tfx_internal.ExecutorOutput()
            output.execution_result.code = code_pb2.ABORTED
            output.execution_result.result_message = message
            tfx_internal.publish_failed_execution(handle, contexts, execution.id, output)
            removed: List[str] = []
            for path in (_orphaned_outputs(pipeline_root, node_id, execution.id)
                         + _orphaned_pushes(store, execution)):
                _remove(path, removed)
            logging.warning("Execution %d (%s) of run %s was left %s by a runner that is gone: "
                            "marked FAILED; removed %s.", execution.id, node_id, run_id,
                            mlmd_pb2.Execution.State.Name(execution.last_known_state),
                            ", ".join(removed) or "no folders")
            found.append(Interrupted(execution.id, node_id, run_id, removed))
    return found

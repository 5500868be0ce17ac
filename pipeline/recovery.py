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
# Custom property of an execution closed here: when its runner was last seen at work (ms since
# the epoch), the end of the run's time (kiko.metadata.runs).
STOPPED_MS = "kiko_stopped_ms"
# Custom property of a run's failed execution: the line the runner told about the failure;
# of a pipeline_run context: the line told when a signal stopped the run.
FAILURE = "kiko_failure"


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


def _node_and_run(store, execution_id: int, context_types):
    """The execution's contexts, its node id and its run id."""
    contexts = store.get_contexts_by_execution(execution_id)
    names = {}
    for context in contexts:
        names.setdefault(context_types.get(context.type_id), context.name)
    pipeline = names.get(_PIPELINE_CONTEXT, "")
    node_context = names.get(_NODE_CONTEXT, "?")
    node_id = (node_context[len(pipeline) + 1:]
               if pipeline and node_context.startswith(pipeline + ".") else node_context)
    return contexts, node_id, names.get(_RUN_CONTEXT, "?")


def _last_sign_of_life_ms(run_executions, folders: List[str]) -> int:
    """When a stopped run was last seen at work: the latest update of one of its executions or
    of a file in the unfinished execution's folders (ML Metadata's own update time of that
    execution becomes the clean-up's, later by as long as nobody ran in the home)."""
    moments = [x.last_update_time_since_epoch for x in run_executions]
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in [""] + names:
                try:
                    moments.append(int(os.path.getmtime(os.path.join(parent, name)) * 1000))
                except OSError:
                    pass
    return max(moments)


def _close_unfinished(metadata_path: str, pipeline_root: str, state_name: str, describe,
                      run_id: Optional[str] = None) -> List[Interrupted]:
    """Gives every execution left NEW or RUNNING (of `run_id`, or of any run) the final state
    `state_name` (FAILED or CANCELED) with the result message `describe(node_id, run_id,
    execution)`, records when it was last seen at work (STOPPED_MS) and removes its folders."""
    if not os.path.isfile(metadata_path):
        return []
    from google.rpc import code_pb2
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2
    from tfx import v1 as tfx
    from tfx.orchestration.portable.mlmd import execution_lib

    from kiko.components import _tfx_internal as tfx_internal

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path)
    found: List[Interrupted] = []
    with tfx_internal.Metadata(config) as handle:
        store = handle.store
        context_types = {t.id: t.name for t in store.get_context_types()}
        unfinished = store.get_executions(
            list_options=metadata_store.ListOptions(filter_query=_UNFINISHED))
        for execution in sorted(unfinished, key=lambda x: x.id):
            contexts, node_id, execution_run = _node_and_run(store, execution.id, context_types)
            if run_id is not None and execution_run != run_id:
                continue
            was = mlmd_pb2.Execution.State.Name(execution.last_known_state)
            folders = (_orphaned_outputs(pipeline_root, node_id, execution.id)
                       + _orphaned_pushes(store, execution))
            run_executions = [execution] + [
                x for c in contexts if context_types.get(c.type_id) == _RUN_CONTEXT
                for x in store.get_executions_by_context(c.id)]
            seen_ms = _last_sign_of_life_ms(run_executions, folders)
            output = tfx_internal.ExecutorOutput()
            output.execution_result.code = (code_pb2.CANCELLED if state_name == "CANCELED"
                                             else code_pb2.ABORTED)
            output.execution_result.result_message = describe(node_id, execution_run, was)
            execution.last_known_state = mlmd_pb2.Execution.State.Value(state_name)
            execution.custom_properties[STOPPED_MS].int_value = seen_ms
            execution_lib.set_execution_result(output.execution_result, execution)
            execution_lib.put_execution(handle, execution, contexts)
            removed: List[str] = []
            for path in folders:
                _remove(path, removed)
            logging.warning("Execution %d (%s) of run %s was left %s: marked %s; removed %s.",
                            execution.id, node_id, execution_run, was, state_name,
                            ", ".join(removed) or "no folders")
            found.append(Interrupted(execution.id, node_id, execution_run, removed))
    return found


def recover_interrupted_runs(metadata_path: str, pipeline_root: str,
                             previous: Optional[Holder] = None) -> List[Interrupted]:
    """Marks every execution left NEW or RUNNING FAILED (aborted) and removes its output folders;
    `previous` is the lock's last holder when it never released the lock (named in the message).

    Call only while holding the home's lock: then no live runner owns those executions. The
    re-run is unaffected otherwise: completed executions stay in the cache.
    """
    def describe(node_id: str, run_id: str, was: str) -> str:
        runner = (f" ({previous.describe()})"
                  if previous is not None and previous.run_id == run_id else "")
        return (f"aborted: the runner of run {run_id}{runner} stopped while {node_id} "
                f"was {was} (killed or crashed); marked failed by pid {os.getpid()} at "
                f"{datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")

    return _close_unfinished(metadata_path, pipeline_root, "FAILED", describe)


def cancel_run(metadata_path: str, pipeline_root: str, run_id: str, signal_name: str,
               told: str) -> List[Interrupted]:
    """Marks the executions of `run_id` left NEW or RUNNING CANCELED (its runner was stopped by
    `signal_name`) and removes their output folders; completed ones stay in the cache. The run
    keeps `told`, the line the runner told, as FAILURE (a step may have started without an
    execution yet: the run must not look complete)."""
    def describe(node_id: str, _run_id: str, was: str) -> str:
        return f"cancelled: {signal_name} stopped the run while {node_id} was {was}"

    found = _close_unfinished(metadata_path, pipeline_root, "CANCELED", describe, run_id)
    if os.path.isfile(metadata_path):
        store = _read_write(metadata_path)
        run = store.get_context_by_type_and_name(_RUN_CONTEXT, run_id)
        if run is not None:
            run.custom_properties[FAILURE].string_value = told
            store.put_contexts([run])
    return found


def _read_write(metadata_path: str):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    return metadata_store.MetadataStore(config)


def record_failure(metadata_path: str, run_id: str, text: str) -> Optional[int]:
    """Records `text`, the line the runner told about the failure, as the FAILURE custom
    property of the run's failed execution, so that `kiko inspect` and `kiko report` say it in
    the same words; returns that execution's id (None when no execution of the run failed)."""
    if not os.path.isfile(metadata_path):
        return None
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    store = _read_write(metadata_path)
    run = store.get_context_by_type_and_name(_RUN_CONTEXT, run_id)
    if run is None:
        return None
    failed = [x for x in store.get_executions_by_context(run.id)
              if x.last_known_state == mlmd_pb2.Execution.FAILED]
    if not failed:
        return None
    execution = max(failed, key=lambda x: x.id)
    execution.custom_properties[FAILURE].string_value = text
    store.put_executions([execution])
    return execution.id

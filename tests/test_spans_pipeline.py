"""Continuous training under LocalDagRunner: generated spans arrive one at a time, each run
ingests the newest span only, the data gate checks its drift, the Trainer reads the window of
validated spans and the Evaluator judges on the newest span."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from ml_metadata.proto import metadata_store_pb2

from kiko.components.anomalies_gate.component import DataDriftError
from kiko.components.anomalies_gate.verdicts import SPAN_VERDICT_TYPE
from kiko.data import synthetic
from kiko.data.movielens import ml1m
from kiko.data.movielens.spans import span_dir_name
from kiko.data.synthetic.spans import SpanConfig, generate_spans
from kiko.metadata.runs import run_summary
from kiko.metadata.spans import span_rows
from kiko.metadata.training import read_model_run
from kiko.metadata.store import open_store
from kiko.pipeline import configs, nodes
from tests.conftest import FAST_HPARAMS, run_local_pipeline
from tests.test_e2e import _latest_rmse, _store, _validation_failures

pytestmark = pytest.mark.slow

State = metadata_store_pb2.Execution.State
SPANS = 3
# Longer training than FAST_HPARAMS' (runs 1 and 2: the same hyperparameters, so run 2 warm
# starts from run 1's model); a candidate must beat the served model (run 2); a worse candidate
# (as tests/test_e2e.py; other hyperparameters: trained cold).
LONGER = ("--hparam", "epochs=10", "--hparam", "autorec_epochs=6")
BETTER = ("--max-rmse-increase", "0", *LONGER)
WORSE = ("--hparam", "blend=false", "--hparam", "epochs=1", "--hparam", "learning_rate=0.00001")


@pytest.fixture(scope="module")
def generated_spans(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated_spans")
    generate_spans(out, synthetic.GeneratorConfig(n_users=150, n_movies=200, n_ratings=9_000,
                                                  seed=7), SpanConfig(count=SPANS))
    return out


def _feed(source, feed, span, rewrite=None):
    """Copies span `span` of `source` into the folder of spans `feed` (as new data arrives),
    `rewrite(lines) -> lines` changing its ratings on the way."""
    target = feed / span_dir_name(span)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / span_dir_name(span), target)
    if rewrite is not None:
        path = target / ml1m.RATINGS_FILE
        lines = path.read_text(encoding=ml1m.ENCODING).splitlines(keepends=True)
        path.write_text("".join(rewrite(lines)), encoding=ml1m.ENCODING)
    return target


def _span_bytes(folder):
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder))


def _by_node(store, node):
    """(execution, inputs, outputs) of each execution of `node`, oldest first."""
    rows = []
    for execution in store.executions(node=node):
        rows.append((execution, store.inputs(execution.id), store.outputs(execution.id)))
    return rows


def _span(artifact):
    return artifact.get_int_custom_property("span")


def _version(artifact):
    return artifact.get_int_custom_property("version")


@pytest.fixture(scope="module")
def sequence(generated_spans, tmp_path_factory):
    """Spans 1..3 arriving one per run (span 1 trained cold; span 2's candidate warm started
    from it and better than the served model; span 3's worse, other hyperparameters, window of
    2 spans), a run with nothing new, then span 2 corrected and re-ingested with --span 2."""
    feed, home = tmp_path_factory.mktemp("feed"), tmp_path_factory.mktemp("spans_home")
    bounds = ("--rmse-upper-bound", "2.0")
    sizes = [_span_bytes(_feed(generated_spans, feed, 1))]  # bytes of each run's new span
    run_local_pipeline(feed, home, *bounds, *LONGER)
    sizes.append(_span_bytes(_feed(generated_spans, feed, 2)))
    run_local_pipeline(feed, home, *bounds, *BETTER)
    served_after_2 = _latest_rmse(_store(home))
    # Nothing new: the runner as users start it, in its own process.
    argv = [sys.executable, "pipeline/local_runner.py", "--data", str(feed), "--home", str(home),
            "--workers", "1"]
    for key, value in FAST_HPARAMS.items():
        argv += ["--hparam", f"{key}={value}"]
    argv += [*bounds, *BETTER]  # the same settings as the run before (as run_local_pipeline)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    again = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=600)
    sizes.append(None)  # nothing new: nothing read
    sizes.append(_span_bytes(_feed(generated_spans, feed, 3)))
    run_local_pipeline(feed, home, *bounds, *WORSE, "--window-spans", "2")
    sizes.append(_span_bytes(_feed(generated_spans, feed, 2, rewrite=lambda lines: lines[:-1])))
    run_local_pipeline(feed, home, *bounds, "--span", "2", "--validate-only")
    return {"home": home, "sizes": sizes, "again": again,
            "served_after_2": served_after_2}


def test_each_run_reads_only_its_new_span(sequence):
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    runs = _by_node(store, nodes.EXAMPLE_GEN_ID)
    states = [State.Name(x.last_known_state) for x, _, _ in runs]
    assert states == ["COMPLETE", "COMPLETE", "CACHED", "COMPLETE", "COMPLETE"]
    examples = [outputs["examples"][0] for _, _, outputs in runs]
    assert [(_span(a), _version(a)) for a in examples] == [(1, 0), (2, 0), (2, 0), (3, 0), (2, 1)]
    # A cached span is the same artifact: not parsed again.
    assert examples[2].id == examples[1].id
    for artifact, size in zip(examples, sequence["sizes"]):
        if size is not None:
            quality = json.loads(artifact.get_string_custom_property("data_quality"))
            assert quality["bytes_read"] == size, artifact.uri


def test_the_window_holds_the_validated_spans(sequence):
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    windows = [sorted(_span(a) for a in inputs["examples"])
               for x, inputs, _ in _by_node(store, nodes.TRAINER_ID)
               if x.last_known_state == State.COMPLETE]
    assert windows == [[1], [1, 2], [2, 3]]


def test_the_evaluator_judges_on_the_newest_span_only(sequence):
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    evaluations = [(x, inputs) for x, inputs, _ in _by_node(store, nodes.EVALUATOR_ID)
                   if x.last_known_state == State.COMPLETE]
    made = {x.id: outputs["examples"][0] for x, _, outputs in _by_node(
        store, nodes.EXAMPLE_GEN_ID)}
    newest = [made[x.id] for x in store.executions(node=nodes.EXAMPLE_GEN_ID)
              if x.last_known_state == State.COMPLETE]
    assert [[a.id for a in inputs["examples"]] for _, inputs in evaluations] == [
        [newest[0].id], [newest[1].id], [newest[2].id]]


def test_better_candidate_is_pushed_and_worse_refused_on_the_new_span(sequence):
    candidate, served = sequence["served_after_2"]
    assert candidate < served  # both measured on span 2's eval split
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    blessings = [outputs["blessing"][0].get_int_custom_property("blessed")
                 for x, _, outputs in _by_node(store, nodes.EVALUATOR_ID)
                 if x.last_known_state == State.COMPLETE]
    assert blessings == [1, 1, 0]
    changes = [(f.metric_key.name, f.metric_threshold.change_threshold.absolute.value)
               for f in _validation_failures(_store(sequence["home"])) if f.metric_key.is_diff]
    assert changes == [("root_mean_squared_error", pytest.approx(configs.MAX_RMSE_INCREASE))]


def test_a_run_with_no_new_span_does_no_work_and_says_so(sequence):
    again = sequence["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert "new data" in again.stdout and "served from cache" in again.stdout
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    summary = run_summary(store, store.runs()[2].name)
    assert summary["nothing_new"] and summary["span"] == 2


def test_training_warm_starts_from_the_previous_blessed_model(sequence):
    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    trainers = _by_node(store, nodes.TRAINER_ID)
    assert [State.Name(x.last_known_state) for x, _, _ in trainers] == [
        "COMPLETE", "COMPLETE", "CACHED", "COMPLETE"]
    models = [outputs["model"][0] for _, _, outputs in trainers]
    assert models[2].id == models[1].id
    # Run 1 has no base; runs 2 and 3 (nothing new) the model of run 1, not run 2's own model
    # trained on the same span; run 4 the model of run 2.
    assert [[a.id for a in inputs.get("base_model", [])] for _, inputs, _ in trainers] == [
        [], [models[0].id], [models[0].id], [models[1].id]]
    cold, warm, _, worse = [read_model_run(outputs["model_run"][0].uri)["start"]
                            for _, _, outputs in trainers]
    assert (cold["mode"], cold["reason"], cold["base_model"], cold["warm_chain"]) == (
        "cold", "no blessed model trained before this data", None, 0)
    assert (warm["mode"], warm["warm_chain"]) == ("warm", 1)
    assert warm["base_model"] == os.path.join(models[0].uri, "Format-Serving")
    assert warm["kept_users"] >= 0.5 and warm["kept_movies"] >= 0.5
    assert warm["members"]["mf"] == "warm"
    assert worse["mode"] == "cold" and worse["reason"].startswith("hyperparameters changed: ")
    assert "blend True -> False" in worse["reason"]
    # The run with nothing new tells the start of the model its cached Trainer gave.
    assert re.search(rf"^  start +warm from model {models[0].id}: kept ",
                     sequence["again"].stdout, re.M), sequence["again"].stdout[-3000:]
    rows = {r["span"]: r for r in span_rows(store) if r["version"] == 0}
    assert rows[2]["training_starts"] == ["warm", "warm", "cold"]  # runs 2, 3 (cached), 4


def test_span_flag_re_ingests_a_changed_span_as_a_new_version(sequence):
    from kiko.components.span_resolver.strategy import span_window

    store = open_store(configs.Paths(str(sequence["home"])).metadata_path)
    examples = store.artifacts('type = "Examples"')
    verdicts = store.artifacts(f'type = "{SPAN_VERDICT_TYPE}"')
    window = span_window(examples, verdicts, 0)
    assert [(_span(a), _version(a)) for a in window] == [(1, 0), (2, 1), (3, 0)]


# ---- drift --------------------------------------------------------------------------------

def _plus_one_star(lines):
    out = []
    for line in lines:
        user, movie, rating, stamp = line.rstrip("\n").split("::")
        out.append(f"{user}::{movie}::{min(int(rating) + 1, 5)}::{stamp}\n")
    return out


def _unseen_users(share):
    """Replaces `share` of a span's users by ids no span has (and adds them to users.dat)."""
    def rewrite(lines):
        users = sorted({int(line.split("::")[0]) for line in lines})
        rng = np.random.default_rng(0)
        moved = set(rng.choice(users, int(round(share * len(users))), replace=False).tolist())
        return [f"{int(u) + 100_000 if int(u) in moved else u}::{rest}"
                for u, rest in (line.split("::", 1) for line in lines)]
    return rewrite


def _add_users(folder):
    path = folder / ml1m.USERS_FILE
    lines = path.read_text(encoding=ml1m.ENCODING).splitlines(keepends=True)
    extra = [f"{int(line.split('::', 1)[0]) + 100_000}::{line.split('::', 1)[1]}"
             for line in lines]
    path.write_text("".join(lines + extra), encoding=ml1m.ENCODING)


def test_drifted_spans_are_stopped_and_natural_ones_pass(generated_spans, tmp_path):
    feed, home = tmp_path / "feed", tmp_path / "home"
    feed.mkdir()
    check = ("--validate-only",)
    _feed(generated_spans, feed, 1)
    run_local_pipeline(feed, home, *check)
    _feed(generated_spans, feed, 2, rewrite=_plus_one_star)
    with pytest.raises(DataDriftError) as stopped:
        run_local_pipeline(feed, home, *check)
    message = str(stopped.value)
    assert "span 2 drifted from span 1" in message
    assert "rating: Jensen-Shannon divergence" in message
    assert f"above the threshold {configs.DRIFT_THRESHOLDS['rating_jsd']:g}" in message
    assert "user_id" not in message
    # The natural span 2 (a new version of it) passes; so does the natural span 3.
    _feed(generated_spans, feed, 2)
    run_local_pipeline(feed, home, *check)
    folder = _feed(generated_spans, feed, 3, rewrite=_unseen_users(0.9))
    _add_users(folder)
    with pytest.raises(DataDriftError) as stopped:
        run_local_pipeline(feed, home, *check)
    message = str(stopped.value)
    assert "span 3 drifted from span 2" in message and "user_id:" in message
    assert f"above the threshold {configs.DRIFT_THRESHOLDS['unseen_users']:g}" in message
    run_local_pipeline(feed, home, *check, "--drift", "warn")
    _feed(generated_spans, feed, 3)
    run_local_pipeline(feed, home, *check)
    store = open_store(configs.Paths(str(home)).metadata_path)
    verdicts = [(v.get_int_custom_property("span"), v.get_string_custom_property("verdict"))
                for v in store.artifacts(f'type = "{SPAN_VERDICT_TYPE}"')]
    assert verdicts == [(1, "first_span"), (2, "passed"), (3, "drift_warned"), (3, "passed")]

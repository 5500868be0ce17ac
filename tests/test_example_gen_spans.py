"""MovieLensExampleGen over spans: TFX's span resolution, a fingerprint and a byte count of the
resolved span's files only, versions numbered from ML Metadata, the span's distinct ids.

The fast tests run the driver as TFX's launcher does (against a fresh ML Metadata store), then
the executor; the slow one runs ExampleGen alone under LocalDagRunner, span by span.
"""

import json
import shutil
import zipfile

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.orchestration import metadata as tfx_metadata
from tfx.orchestration.portable import data_types as portable_data_types
from tfx.proto.orchestration import pipeline_pb2
from tfx.types import standard_artifacts, standard_component_specs

from kiko.components.movielens_example_gen import outputs
from kiko.components.movielens_example_gen.component import (
    MovieLensExampleGen, locate_data, locate_input, make_input_config)
from kiko.components.movielens_example_gen.driver import (
    ContentFingerprintDriver, number_version)
from kiko.components.movielens_example_gen.executor import Executor
from kiko.components.movielens_example_gen.inputs import SpanNotFoundError, span_range_config
from kiko.components.movielens_example_gen.options import Options
from kiko.data import synthetic
from kiko.data.movielens import get_layout
from kiko.data.movielens.reading import read_ratings
from kiko.data.movielens.source import resolve_source
from kiko.data.movielens.spans import span_dir_name
from kiko.model import features as fk
from kiko.pipeline import configs
from tests.conftest import run_example_gen

PIPELINE = "spans-test"
NODE = "ExampleGen"
SPAN = "span"
VERSION = "version"
FINGERPRINT = "input_fingerprint"


# --- spans on disk ------------------------------------------------------------------------------

def make_spans(root, layout="ml-1m", count=3, width=0, zipped=False, seed=5):
    """One generated data set cut into `count` spans by line order (the generator writes a
    user's ratings together, so the spans hold mostly different users), each with the side
    files; folders `span-1`... (`span-01`... for width 2), or zips of them."""
    full = root / "_full"
    synthetic.generate(full, synthetic.GeneratorConfig.small(seed=seed, layout=layout))
    ratings_file = get_layout(layout).ratings_file
    lines = (full / ratings_file).read_bytes().splitlines(keepends=True)
    header = lines[:1] if get_layout(layout).ratings_header else []
    body = lines[len(header):]
    for index in range(count):
        name = f"span-{str(index + 1).zfill(width)}" if width else span_dir_name(index + 1)
        folder = root / name
        folder.mkdir()
        for path in full.iterdir():
            if path.name not in (ratings_file, synthetic.REPORT_FILE):
                shutil.copy(path, folder / path.name)
        part = body[len(body) * index // count:len(body) * (index + 1) // count]
        (folder / ratings_file).write_bytes(b"".join(header + part))
        if zipped:
            with zipfile.ZipFile(root / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(folder.iterdir()):
                    archive.write(path, f"{name}/{path.name}")
            shutil.rmtree(folder)
    shutil.rmtree(full)
    return root


def span_files(folder):
    """{path: bytes} of the files a span's data set is parsed from (ratings and side files)."""
    return {ref.display_name: ref.size() for ref in resolve_source(str(folder)).files}


def span_ids(folder):
    ratings = list(read_ratings(resolve_source(str(folder))))
    return (sorted({r.user_id for r in ratings}), sorted({r.movie_id for r in ratings}),
            len(ratings))


# --- running the driver and the executor as TFX's launcher does --------------------------------

def metadata_at(path):
    return tfx_metadata.Metadata(tfx_metadata.sqlite_metadata_connection_config(str(path)))


def ingest(input_base, pattern, out, metadata_path, span=None, layout="auto"):
    """The driver's run (span, version, fingerprint on the output artifact), then the executor
    with the exec properties the driver resolved; the Examples artifact."""
    component = MovieLensExampleGen(
        input_base=str(input_base), input_config=make_input_config({"single_split": pattern}),
        range_config=span_range_config(span), options=Options(layout=layout))
    examples = standard_artifacts.Examples()
    examples.uri = str(out)
    info = portable_data_types.ExecutionInfo(
        exec_properties=dict(component.exec_properties),
        output_dict={standard_component_specs.EXAMPLES_KEY: [examples]},
        pipeline_info=pipeline_pb2.PipelineInfo(id=PIPELINE),
        pipeline_node=pipeline_pb2.PipelineNode(node_info=pipeline_pb2.NodeInfo(id=NODE)))
    result = ContentFingerprintDriver(metadata_at(metadata_path)).run(info)
    exec_properties = {key: getattr(value, value.WhichOneof("value"))
                       for key, value in result.exec_properties.items()}
    examples.set_mlmd_artifact(
        result.output_artifacts[standard_component_specs.EXAMPLES_KEY].artifacts[0])
    Executor(Executor.Context()).Do(
        {}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples


def quality(examples) -> dict:
    return json.loads(examples.get_string_custom_property(outputs.DATA_QUALITY_PROPERTY))


def assert_ingested(examples, folder, span, version=0):
    """The artifact is span `span`'s: its properties, fingerprint, bytes, examples and ids."""
    assert examples.get_int_custom_property(SPAN) == span
    assert examples.get_int_custom_property(VERSION) == version
    files = span_files(folder)
    fingerprint = examples.get_string_custom_property(FINGERPRINT)
    assert fingerprint.count("sha256=") == len(files)
    assert examples.span == span and examples.version == version  # TFX's properties too
    for path in files:
        assert f"{path}:sha256=" in fingerprint
    report = quality(examples)
    assert report["bytes_read"] == sum(files.values())
    users, movies, n_ratings = span_ids(folder)
    assert report["examples"] == report["examples_written"] == n_ratings
    assert outputs.read_ids(examples.uri, fk.USER_ID).tolist() == users
    assert outputs.read_ids(examples.uri, fk.MOVIE_ID).tolist() == movies


@pytest.fixture(scope="module")
def dat_spans(tmp_path_factory):
    return make_spans(tmp_path_factory.mktemp("dat_spans"))


@pytest.mark.parametrize("span", [None, 2])
def test_only_the_resolved_span_is_read(dat_spans, tmp_path, span):
    location = locate_data(str(dat_spans), span=span)
    assert location.pattern == "span-{SPAN}"
    expected = 3 if span is None else span
    folder = dat_spans / span_dir_name(expected)
    assert location.latest_source.ratings.path == str(folder / "ratings.dat")
    examples = ingest(location.input_base, location.pattern, tmp_path / "out",
                      tmp_path / "metadata.sqlite", span=span)
    assert_ingested(examples, folder, expected)
    # The other spans' ids are not in this span's files.
    others = set()
    for other in {1, 2, 3} - {expected}:
        others.update(span_ids(dat_spans / span_dir_name(other))[0])
    assert others - set(outputs.read_ids(examples.uri, fk.USER_ID).tolist())


def test_zip_spans(tmp_path):
    root = make_spans(tmp_path / "zips", zipped=True, seed=6)
    location = locate_data(str(root))
    assert location.pattern == "span-{SPAN}.zip"
    examples = ingest(location.input_base, location.pattern, tmp_path / "out",
                      tmp_path / "metadata.sqlite")
    assert_ingested(examples, root / "span-3.zip", 3)
    assert "span-3.zip!span-3/ratings.dat:sha256=" in examples.get_string_custom_property(
        FINGERPRINT)


def test_ratings_file_pattern_with_padded_spans_in_the_csv_layout(tmp_path):
    root = make_spans(tmp_path / "csv", layout="ml-csv", width=2, seed=7)
    assert locate_data(str(root)).pattern == "span-{SPAN:2}"
    location = locate_data(f"{root}/span-{{SPAN:2}}/ratings.csv", span=2)
    assert (location.input_base, location.pattern) == (str(root), "span-{SPAN:2}/ratings.csv")
    assert location.latest_source.movies.path == str(root / "span-02" / "movies.csv")
    examples = ingest(location.input_base, location.pattern, tmp_path / "out",
                      tmp_path / "metadata.sqlite", span=2)
    assert_ingested(examples, root / "span-02", 2)
    assert quality(examples)["layout"] == "ml-csv"


def test_a_pattern_matching_nothing_is_a_clear_error(dat_spans, tmp_path):
    with pytest.raises(SpanNotFoundError,
                       match=rf"no span in {dat_spans} matches the pattern "
                             r"'span-\{SPAN\}/ratings\.csv'"):
        locate_data(f"{dat_spans}/span-{{SPAN}}/ratings.csv")
    with pytest.raises(SpanNotFoundError, match=rf"no span 7 in {dat_spans} matches"):
        locate_data(str(dat_spans), span=7)
    single = dat_spans / "span-1"
    with pytest.raises(SpanNotFoundError, match="is one data set"):
        locate_data(str(single), span=1)
    # One data set: today's location, span 0.
    location = locate_data(str(single))
    assert (location.input_base, location.pattern) == locate_input(resolve_source(str(single)))
    # The executor never globs a pattern the driver has not resolved.
    with pytest.raises(ValueError, match=r"'span-\{SPAN\}' .* still holds placeholders"):
        run_example_gen(dat_spans, tmp_path / "out",
                        input_config=make_input_config({"single_split": "span-{SPAN}"}))


# --- versions from ML Metadata ------------------------------------------------------------------

def _publish(store, context_id, type_id, span, version, fingerprint, live=True):
    artifact = metadata_store_pb2.Artifact(
        type_id=type_id, uri=f"/x/{span}/{version}",
        state=metadata_store_pb2.Artifact.LIVE if live else metadata_store_pb2.Artifact.DELETED)
    artifact.custom_properties[SPAN].int_value = span
    artifact.custom_properties[VERSION].int_value = version
    artifact.custom_properties[FINGERPRINT].string_value = fingerprint
    [artifact_id] = store.put_artifacts([artifact])
    store.put_attributions_and_associations(
        [metadata_store_pb2.Attribution(artifact_id=artifact_id, context_id=context_id)], [])


def test_versions_are_numbered_per_span_from_live_artifacts(tmp_path):
    config = tfx_metadata.sqlite_metadata_connection_config(str(tmp_path / "m.sqlite"))
    store = metadata_store.MetadataStore(config)
    node = f"{PIPELINE}.{NODE}"
    assert number_version(store, node, 2, "a") == 0  # no history at all
    context_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    [context_id] = store.put_contexts([metadata_store_pb2.Context(type_id=context_type,
                                                                  name=node)])
    type_id = store.put_artifact_type(metadata_store_pb2.ArtifactType(name="Examples"))
    assert number_version(store, node, 2, "a") == 0
    _publish(store, context_id, type_id, span=2, version=0, fingerprint="a")
    _publish(store, context_id, type_id, span=3, version=5, fingerprint="c")
    assert number_version(store, node, 2, "a") == 0  # unchanged: the same version (cached)
    assert number_version(store, node, 2, "b") == 1  # changed: one more
    assert number_version(store, node, 4, "a") == 0  # a new span
    _publish(store, context_id, type_id, span=2, version=1, fingerprint="b")
    assert number_version(store, node, 2, "b") == 1
    # Back to content "a": newer than version 1, so a new version, not the old artifact.
    assert number_version(store, node, 2, "a") == 2
    _publish(store, context_id, type_id, span=2, version=7, fingerprint="z", live=False)
    assert number_version(store, node, 2, "b") == 1  # a deleted artifact does not count
    assert number_version(store, "other.ExampleGen", 2, "b") == 0  # another node's


# --- the component under LocalDagRunner ---------------------------------------------------------

def _run(input_base, pattern, home, span=None):
    example_gen = MovieLensExampleGen(
        input_base=str(input_base), input_config=make_input_config({"single_split": pattern}),
        range_config=span_range_config(span)).with_id(NODE)
    example_gen.with_beam_pipeline_args(configs.beam_pipeline_args(workers=1))
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name=PIPELINE, pipeline_root=str(home / "root"), components=[example_gen],
        enable_cache=True, metadata_connection_config=(
            tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(home / "metadata.sqlite")))))
    store = metadata_store.MetadataStore(
        tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(home / "metadata.sqlite")))
    context = store.get_context_by_type_and_name("node", f"{PIPELINE}.{NODE}")
    last = max(store.get_executions_by_context(context.id), key=lambda e: e.id)
    [event] = [e for e in store.get_events_by_execution_ids([last.id])
               if e.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = [a for a in store.get_artifacts() if a.type_id == store.get_artifact_type(
        standard_artifacts.Examples.TYPE_NAME).id]
    return last, store.get_artifacts_by_id([event.artifact_id])[0], len(artifacts)


@pytest.mark.slow
def test_span_by_span_under_local_dag_runner(tmp_path):
    root = make_spans(tmp_path / "spans", seed=8)
    home = tmp_path / "home"
    State = metadata_store_pb2.Execution

    def props(artifact):
        return (artifact.custom_properties[SPAN].int_value,
                artifact.custom_properties[VERSION].int_value)

    execution, newest, count = _run(root, "span-{SPAN}", home)
    assert execution.last_known_state == State.COMPLETE and props(newest) == (3, 0)
    assert count == 1 and (newest.properties[SPAN].int_value, newest.properties[VERSION].int_value
                           ) == (3, 0)
    fingerprint = newest.custom_properties[FINGERPRINT].string_value
    assert str(root / "span-3" / "ratings.dat") in fingerprint and "span-2" not in fingerprint
    bytes_read = json.loads(newest.custom_properties[outputs.DATA_QUALITY_PROPERTY].string_value
                            )["bytes_read"]
    assert bytes_read == sum(span_files(root / "span-3").values())

    # Nothing new: the same artifact, from the cache.
    execution, again, count = _run(root, "span-{SPAN}", home)
    assert execution.last_known_state == State.CACHED
    assert (again.id, count) == (newest.id, 1)

    # An older span, asked for: ingested as its version 0.
    execution, second, count = _run(root, "span-{SPAN}", home, span=2)
    assert execution.last_known_state == State.COMPLETE and props(second) == (2, 0)
    assert count == 2

    # Span 2 changes (its last rating removed): re-ingested as version 1, from its new bytes.
    ratings = root / "span-2" / "ratings.dat"
    ratings.write_bytes(b"".join(ratings.read_bytes().splitlines(keepends=True)[:-1]))
    execution, changed, count = _run(root, "span-{SPAN}", home, span=2)
    assert execution.last_known_state == State.COMPLETE and props(changed) == (2, 1)
    assert count == 3 and changed.id != second.id
    report = json.loads(changed.custom_properties[outputs.DATA_QUALITY_PROPERTY].string_value)
    assert report["bytes_read"] == sum(span_files(root / "span-2").values())
    assert report["examples"] == span_ids(root / "span-2")[2]
    assert outputs.read_ids(changed.uri, fk.USER_ID).tolist() == span_ids(root / "span-2")[0]

    # And unchanged since: cached as version 1.
    execution, cached, count = _run(root, "span-{SPAN}", home, span=2)
    assert execution.last_known_state == State.CACHED
    assert (cached.id, count) == (changed.id, 3)

"""kiko's DaskRunner on a local dask.distributed cluster (two worker processes).

One test per gap of Beam's stock DaskRunner that pipeline/dask_runner.py closes; each also runs
on the stock runner, where it is expected to fail (strict xfail: when Beam closes a gap
upstream, the test says so and the fix can go). Results are written by a probe sink that uses
no runner feature under test (no side input, no finish_bundle, one file per element).
"""

import os
import uuid
from typing import Tuple

import apache_beam as beam
import pytest
from dask import distributed
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import GlobalWindows

from kiko.pipeline import configs

STOCK = "apache_beam.runners.dask.dask_runner.DaskRunner"


def _runners(raises):
    """kiko's runner, and the stock one expected to fail with `raises` (what the gap produces
    there: a wrong result fails the test's assertion, a crash its own error)."""
    return [configs.DASK_RUNNER,
            pytest.param(STOCK, marks=pytest.mark.xfail(
                strict=True, raises=raises, reason="a gap of Beam's DaskRunner"))]


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address
        # The stock runner leaves its clients open: close them before their cluster goes.
        for client in list(distributed.Client._instances):
            client.close()


def _options(runner, scheduler, *extra):
    return PipelineOptions([f"--runner={runner}", f"--dask_client_address={scheduler}",
                            *extra])


class _Probe(beam.DoFn):
    """Writes each element (repr) to its own file under `folder`."""

    def __init__(self, folder):
        self._folder = folder

    def process(self, element):
        with open(os.path.join(self._folder, uuid.uuid4().hex), "w") as f:
            f.write(repr(element))


def _probed(folder):
    import ast

    return sorted(ast.literal_eval(open(os.path.join(folder, name)).read())
                  for name in os.listdir(folder))


def _probe(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    return beam.ParDo(_Probe(str(folder))), str(folder)


class _EvenOrOdd(beam.DoFn):
    def process(self, n):
        yield n if n % 2 == 0 else beam.pvalue.TaggedOutput("odd", n)


@pytest.mark.parametrize("runner", _runners(AssertionError))
def test_tagged_output_holds_only_its_own_elements(runner, scheduler, tmp_path):
    probe, folder = _probe(tmp_path, "odd")
    with beam.Pipeline(options=_options(runner, scheduler)) as p:
        split = (p | beam.Create(range(10))
                 | beam.ParDo(_EvenOrOdd()).with_outputs("odd", main="even"))
        _ = split.odd | probe
    assert _probed(folder) == [1, 3, 5, 7, 9]


@pytest.mark.parametrize("runner", _runners(AssertionError))
def test_every_sink_is_written(runner, scheduler, tmp_path):
    first, first_folder = _probe(tmp_path, "first")
    second, second_folder = _probe(tmp_path, "second")
    with beam.Pipeline(options=_options(runner, scheduler)) as p:
        numbers = p | beam.Create(range(4))
        _ = numbers | "First" >> first
        _ = numbers | beam.Map(lambda n: n * 10) | "Second" >> second
    assert _probed(first_folder) == [0, 1, 2, 3]
    assert _probed(second_folder) == [0, 10, 20, 30]


class _CountInBundle(beam.DoFn):
    def start_bundle(self):
        self._count = 0

    def process(self, element):
        self._count += 1

    def finish_bundle(self):
        yield GlobalWindows.windowed_value(self._count)


@pytest.mark.parametrize("runner", _runners(AssertionError))
def test_finish_bundle_outputs_are_kept(runner, scheduler, tmp_path):
    probe, folder = _probe(tmp_path, "counts")
    with beam.Pipeline(options=_options(runner, scheduler, "--dask_npartitions=3")) as p:
        _ = p | beam.Create(range(30)) | beam.ParDo(_CountInBundle()) | probe
    counts = _probed(folder)
    assert sum(counts) == 30 and len(counts) == 3


@pytest.mark.parametrize("runner", _runners(AttributeError))
def test_read_from_a_bounded_source(runner, scheduler, tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("".join(f"line {i}\n" for i in range(50)))
    probe, folder = _probe(tmp_path, "lines")
    with beam.Pipeline(options=_options(runner, scheduler)) as p:
        _ = p | beam.io.ReadFromText(str(text)) | probe
    assert _probed(folder) == sorted(f"line {i}" for i in range(50))


def _marked(folder):
    """A side-input value whose computation leaves a file behind each time."""
    with open(os.path.join(folder, uuid.uuid4().hex), "w") as f:
        f.write("computed")
    return 100


@pytest.mark.parametrize("runner", _runners(AssertionError))
def test_side_input_is_computed_once(runner, scheduler, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    probe, folder = _probe(tmp_path, "sums")
    with beam.Pipeline(options=_options(runner, scheduler, "--dask_npartitions=4")) as p:
        offset = beam.pvalue.AsSingleton(
            p | "One" >> beam.Create([None]) | beam.Map(lambda _: _marked(str(marks))))
        numbers = p | "Numbers" >> beam.Create(range(8))
        _ = (numbers | "Add" >> beam.Map(lambda n, k: n + k, offset)
             | "Twice" >> beam.Map(lambda n, k: n + k, offset) | probe)
    assert _probed(folder) == [n + 200 for n in range(8)]
    assert len(os.listdir(marks)) == 1


def test_file_sinks_side_inputs_group_and_combine_as_the_direct_runner(scheduler, tmp_path):
    """The shape of kiko's ExampleGen: Create with reshuffle, a keyed pass with GroupByKey,
    CombinePerKey and CombineGlobally, AsSingleton / AsDict / AsMultiMap side inputs, tagged
    outputs, Partition, Flatten and several file sinks in one run."""

    def build(p, out):
        lines = p | beam.Create([f"{i % 7}:{i}" for i in range(200)] + ["bad", "worse"],
                                reshuffle=True)
        parsed = lines | beam.FlatMap(
            lambda line: [beam.pvalue.TaggedOutput("rejected", line)] if ":" not in line
            else [tuple(int(x) for x in line.split(":"))]).with_outputs("rejected", main="ok")
        per_key = parsed.ok | beam.GroupByKey() | beam.MapTuple(lambda k, vs: (k, sorted(vs)))
        sums = parsed.ok | beam.CombinePerKey(sum)
        total = parsed.ok | beam.Values() | beam.CombineGlobally(sum)
        names = p | "Names" >> beam.Create([(k, f"key{k}") for k in range(7)])
        joined = per_key | beam.Map(
            lambda kv, s, t, n, m: f"{n[kv[0]]} {kv[1]} {s[kv[0]]} {t} {sorted(m[kv[0]])}",
            beam.pvalue.AsDict(sums), beam.pvalue.AsSingleton(total),
            beam.pvalue.AsDict(names), beam.pvalue.AsMultiMap(parsed.ok))
        low, high = parsed.ok | beam.Partition(lambda kv, n: int(kv[1] >= 100), 2)
        both = ((low | "Low" >> beam.Map(lambda kv: f"low {kv}"),
                 high | "High" >> beam.Map(lambda kv: f"high {kv}")) | beam.Flatten())
        for name, pcoll in (("joined", joined), ("rejected", parsed.rejected),
                            ("both", both)):
            _ = pcoll | f"Write{name}" >> beam.io.WriteToText(
                os.path.join(out, name), shard_name_template="")
        _ = (parsed.ok | beam.Map(lambda kv: f"{kv}".encode())
             | beam.io.WriteToTFRecord(os.path.join(out, "records")))

    def written(out):
        files = {}
        for name in sorted(os.listdir(out)):
            path = os.path.join(out, name)
            if name.startswith("records"):
                files.setdefault("records", []).extend(
                    r.decode() for r in _read_tfrecords(path))
            else:
                files[name] = sorted(open(path).read().splitlines())
        files["records"] = sorted(files.get("records", []))
        return files

    direct, dask = tmp_path / "direct", tmp_path / "dask"
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner"])) as p:
        build(p, str(direct))
    with beam.Pipeline(options=_options(configs.DASK_RUNNER, scheduler,
                                        "--dask_npartitions=3")) as p:
        build(p, str(dask))
    expected = written(str(direct))
    assert set(expected) == {"joined", "rejected", "both", "records"}
    assert len(expected["records"]) == 200 and expected["rejected"] == ["bad", "worse"]
    assert written(str(dask)) == expected
    # The file sinks leave no temporary folder behind.
    assert all(os.path.isfile(os.path.join(dask, name)) for name in os.listdir(dask))


def _read_tfrecords(path):
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(path)]


def test_a_failing_dofn_fails_the_run_naming_its_step(scheduler):
    def fail(n):
        raise ValueError(f"bad element {n}")

    with pytest.raises(Exception, match="bad element"):
        with beam.Pipeline(options=_options(configs.DASK_RUNNER, scheduler)) as p:
            _ = p | beam.Create([1]) | "Explode" >> beam.Map(fail)


def test_an_unsupported_transform_fails_by_name(scheduler):
    with pytest.raises(NotImplementedError, match="Windowed"):
        with beam.Pipeline(options=_options(configs.DASK_RUNNER, scheduler)) as p:
            _ = (p | beam.Create([1])
                 | "Windowed" >> beam.WindowInto(beam.window.FixedWindows(10))
                 | beam.Map(str))


def test_the_run_closes_its_client(scheduler):
    p = beam.Pipeline(options=_options(configs.DASK_RUNNER, scheduler))
    _ = p | beam.Create([1, 2]) | beam.Map(str)
    result = p.run()
    assert result.wait_until_finish() == "DONE"
    assert result.client.status == "closed"



class _Marked:
    def __init__(self, decoded=False):
        self.decoded = decoded


class _MarkedCoder(beam.coders.Coder):
    """Marks what it decodes: shows whether a value went through its coder."""

    def encode(self, value):
        return b""

    def decode(self, encoded):
        return _Marked(decoded=True)

    def is_deterministic(self):
        return True


beam.coders.registry.register_coder(_Marked, _MarkedCoder)


@pytest.mark.parametrize("runner", _runners(AssertionError))
def test_values_cross_a_group_by_key_through_their_coder(runner, scheduler, tmp_path):
    """As at any Beam shuffle: what leaves it is a fresh copy. Dask would hand over the very
    objects, and a CombineFn may change the accumulators it merges (TFDV finalizes its
    sketches, which then fail to travel to another worker: StatisticsGen at 1M ratings)."""
    probe, folder = _probe(tmp_path, "decoded")
    with beam.Pipeline(options=_options(runner, scheduler)) as p:
        _ = (p | beam.Create([("k", 0)] * 3)
             | beam.Map(lambda kv: (kv[0], _Marked())).with_output_types(Tuple[str, _Marked])
             | beam.GroupByKey()
             | beam.MapTuple(lambda key, values: [v.decoded for v in values]) | probe)
    assert _probed(folder) == [[True, True, True]]

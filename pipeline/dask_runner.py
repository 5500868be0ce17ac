"""Beam's DaskRunner with the fixes kiko's Beam components need.

    --runner=kiko.pipeline.dask_runner.DaskRunner --dask_client_address=HOST:8786

Beam's DaskRunner (apache_beam.runners.dask) translates a pipeline into dask.bag operations.
On kiko's pipeline it loses data without an error. This subclass keeps Beam's options
(DaskOptions), graph rewrites (dask_overrides) and GroupByKey/Flatten translations, and
replaces the rest of the translation where it falls short:

1. Tagged outputs: a multi-output ParDo had one bag holding every output, so each consumer of
   one output (main or tagged) saw all of them. Outputs now travel tagged; each consumer
   selects its own.
2. Several sinks: only the last transform's bag was computed, so of several writes only the
   last one happened. Every transform whose output nobody reads is computed.
3. finish_bundle outputs: a bundle's outputs were collected before finish_bundle ran, which
   dropped what it emits (file sinks report their written shards there).
4. Read: `beam.io.Read` (ReadFromTFRecord, ReadFromText) had no translation. A bounded source
   is split on the launcher; each bundle is read in its own partition.
5. Side inputs: each use of a side input computed its whole bag again inside the task (a file
   sink's initialisation ran once per use, each with its own temp folder). A side input is now
   one dask value, computed once and handed to every partition that reads it.
6. GroupByKey handed over the very objects it grouped. Values now cross it encoded by their
   coder, as at any Beam shuffle: a CombineFn may change the accumulators it merges, and TFDV's
   finalized sketches then failed to travel to another worker (StatisticsGen at 1M ratings).

Besides: CombinePerKey is combined per bundle before its shuffle (as the DirectRunner does),
Create spreads its values over the cluster's worker threads, each run closes its client, and a
transform it cannot run fails the run by name instead of passing its input through unchanged.
"""

import dataclasses
import itertools
import uuid
from typing import Any, Dict, Optional, Sequence, Tuple

import apache_beam as beam
import dask
import dask.bag as db
import dask.distributed as ddist
from apache_beam import coders, pvalue
from apache_beam.internal import pickler
from apache_beam.io import iobase
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor, PTransformOverride
from apache_beam.runners.common import DoFnRunner, DoFnSignature, Receiver
from apache_beam.runners.dask import dask_runner
from apache_beam.runners.dask import overrides as dask_overrides
from apache_beam.runners.dask import transform_evaluator as stock
from apache_beam.runners.runner import PipelineState
from apache_beam.transforms import core, window
from apache_beam.transforms.combiners import LiftedCombinePerKey
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.userstate import is_stateful_dofn

# Bundle size a bounded source is split into (the DirectRunner splits at 64 MiB too).
READ_BUNDLE_BYTES = 64 << 20


def _windowed(value: Any):
    return window.GlobalWindows.windowed_value(value)


class _Collect(Receiver):
    """Receives one output of a DoFn into the bundle's output list, tagged when asked."""

    def __init__(self, out: list, tag: Optional[str], tagged: bool):
        self._append = out.append
        self._tag = tag
        self._tagged = tagged

    def receive(self, windowed_value) -> None:
        self._append((self._tag, windowed_value.value) if self._tagged else windowed_value.value)


class _Receivers(dict):
    """The declared outputs; like Beam's runners, outputs to an undeclared tag are dropped."""

    def __missing__(self, tag):
        return _Drop()


class _Drop(Receiver):
    def receive(self, windowed_value) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class _ParDoSpec:
    """What a partition needs to run one ParDo; the DoFn travels pickled by Beam's pickler,
    so that every bundle gets its own instance (dask runs several tasks per worker at once)."""

    label: str
    payload: bytes  # pickler.dumps((dofn, args, kwargs, [(view class, view options)]))
    tags: Tuple[Optional[str], ...]
    tagged: bool
    token: str

    def __dask_tokenize__(self):
        return self.token


def _run_pardo(elements, spec: _ParDoSpec, *side_values) -> list:
    """Runs one bundle (a dask partition) through the DoFn: setup, start_bundle, process,
    finish_bundle, teardown; returns every output, finish_bundle's included."""
    fn, args, kwargs, views = pickler.loads(spec.payload)
    out: list = []
    receivers = _Receivers({tag: _Collect(out, tag, spec.tagged) for tag in spec.tags})
    side_inputs = [SideInputMap(view_class, options, [_windowed(v) for v in values])
                   for (view_class, options), values in zip(views, side_values)]
    runner = DoFnRunner(fn, args, kwargs, side_inputs, core.Windowing(window.GlobalWindows()),
                        tagged_receivers=receivers, step_name=spec.label)
    runner.setup()
    runner.start()
    for element in elements:
        runner.process(_windowed(element))
    runner.finish()
    runner.teardown()
    return out


def _select(tagged_elements, tag: Optional[str]) -> list:
    return [value for t, value in tagged_elements if t == tag]


def _concat(parts) -> list:
    return list(itertools.chain.from_iterable(parts))


def _encode_values(pairs, coder) -> list:
    return [(key, coder.encode(value)) for key, value in pairs]


def _decode_values(groups, coder) -> list:
    return [(key, [coder.decode(value).value for value in values]) for key, values in groups]


def _length(elements) -> list:
    return [len(elements)]


def _total(counts) -> int:
    return sum(itertools.chain.from_iterable(counts))


def _read_bundles(bundles) -> list:
    out: list = []
    for bundle in bundles:
        source = bundle.source
        out.extend(source.read(source.get_range_tracker(bundle.start_position,
                                                        bundle.stop_position)))
    return out


class _Translator(PipelineVisitor):
    """Translates each leaf transform into a dask bag; remembers which outputs nobody reads."""

    def __init__(self, bag_kwargs: Dict[str, int], worker_threads: int):
        self._bag_kwargs = bag_kwargs
        self._worker_threads = max(1, worker_threads)
        self._bags: Dict[AppliedPTransform, Any] = {}
        self._tagged: set = set()
        self._producer: Dict[pvalue.PCollection, Tuple[AppliedPTransform, Optional[str]]] = {}
        self._pcoll_bags: Dict[pvalue.PCollection, Any] = {}
        self._consumed: set = set()

    def visit_transform(self, node: AppliedPTransform) -> None:
        transform = node.transform
        main = [pc for pc in node.main_inputs.values() if not isinstance(pc, pvalue.PBegin)]
        self._consumed.update(main)
        self._consumed.update(si.pvalue for si in node.side_inputs)
        if not all(pc.windowing.is_default() for pc in main):
            raise NotImplementedError(
                f"{node.full_label}: the Dask runner runs only globally windowed PCollections")

        if isinstance(transform, dask_overrides._Create):
            bag = self._create(transform.values)
        elif isinstance(transform, dask_overrides._Read):
            bag = self._read(node.full_label, transform.source)
        elif isinstance(transform, dask_overrides._GroupByKeyOnly):
            bag = self._group_by_key(node, main[0])
        elif isinstance(transform, dask_overrides._Flatten):
            bag = (db.concat([self._bag(pc) for pc in main]) if main
                   else db.from_sequence([], npartitions=1))
        elif isinstance(transform, (dask_overrides._Reshuffle, dask_overrides._GroupAlsoByWindow)) or (
                isinstance(transform, core.WindowInto) and transform.windowing.is_default()):
            # Identities here: dask moves data anyway; values are grouped already; one window.
            bag = self._bag(main[0])
        elif type(transform) is core.ParDo:
            bag = self._pardo(node, self._bag(main[0]))
        else:
            raise NotImplementedError(
                f"{node.full_label}: the Dask runner cannot run {type(transform).__name__}")
        self._bags[node] = bag
        for tag, pcoll in node.outputs.items():
            self._producer[pcoll] = (node, tag)

    def _bag(self, pcoll: pvalue.PCollection):
        """The bag of one PCollection: its producer's, or the selection of its tag."""
        if pcoll not in self._pcoll_bags:
            node, tag = self._producer[pcoll]
            bag = self._bags[node]
            if node in self._tagged:
                bag = bag.map_partitions(_select, tag)
            self._pcoll_bags[pcoll] = bag
        return self._pcoll_bags[pcoll]

    def _group_by_key(self, node: AppliedPTransform, pcoll: pvalue.PCollection):
        """Beam's GroupByKey translation, with the values encoded by their coder on the way
        (gap 6): what comes out is a fresh copy."""
        value_coder = coders.registry.get_coder(pcoll.element_type).coders()[1]
        encoded = self._bag(pcoll).map_partitions(_encode_values, value_coder)
        return stock.GroupByKey(node).apply(encoded).map_partitions(_decode_values, value_coder)

    def _whole(self, pcoll: pvalue.PCollection):
        """A PCollection as one dask value (a list), computed once for all its readers.

        Delayed over the partitions' own keys: a bag passed as an argument would be copied
        under new keys for each reader, and so computed again for each."""
        parts = self._bag(pcoll).to_delayed(optimize_graph=False)
        return dask.delayed(_concat, pure=True)(parts)

    def _create(self, values: Sequence[Any]):
        kwargs = self._bag_kwargs or {"npartitions": min(len(values), self._worker_threads)}
        if not values:
            kwargs = {"npartitions": 1}
        return db.from_sequence(values, **kwargs)

    def _read(self, label: str, source):
        if not isinstance(source, iobase.BoundedSource):
            raise NotImplementedError(f"{label}: the Dask runner reads only bounded sources")
        bundles = list(source.split(desired_bundle_size=READ_BUNDLE_BYTES))
        return db.from_sequence(bundles, npartitions=max(1, len(bundles))).map_partitions(
            _read_bundles)

    def _pardo(self, node: AppliedPTransform, input_bag):
        transform = node.transform
        if is_stateful_dofn(transform.fn) or DoFnSignature(transform.fn).is_splittable_dofn():
            raise NotImplementedError(
                f"{node.full_label}: the Dask runner runs no stateful or splittable DoFn")
        views = [(type(si), si._view_options()) for si in transform.side_inputs]
        tags = tuple(node.outputs)
        spec = _ParDoSpec(
            label=node.full_label,
            payload=pickler.dumps((transform.fn, transform.args, transform.kwargs, views)),
            tags=tags, tagged=len(tags) > 1, token=f"{node.full_label}-{uuid.uuid4().hex}")
        if spec.tagged:
            self._tagged.add(node)
        side_values = [self._whole(si.pvalue) for si in transform.side_inputs]
        return input_bag.map_partitions(_run_pardo, spec, *side_values)

    def run_all(self):
        """One dask value that runs every transform whose outputs nobody reads (and so every
        transform): the number of elements they output."""
        counts = [part for node, bag in self._bags.items()
                  if not any(pc in self._consumed for pc in node.outputs.values())
                  for part in bag.map_partitions(_length).to_delayed(optimize_graph=False)]
        return dask.delayed(_total, pure=True)(counts)


class _Read(dask_overrides._Read):
    """Beam's Dask placeholder for Read, globally windowed like the Read it replaces (the
    stock one has no windowing, so no transform after it can ask for its windowing)."""

    def get_windowing(self, inputs):
        return core.Windowing(window.GlobalWindows())


class _ReadOverride(PTransformOverride):
    def matches(self, applied_ptransform: AppliedPTransform) -> bool:
        return type(applied_ptransform.transform) is beam.io.Read

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform):
        return _Read(applied_ptransform.transform.source)


class _CombinePerKeyOverride(PTransformOverride):
    """Combines values per bundle before the shuffle, as the DirectRunner's override does."""

    def matches(self, applied_ptransform: AppliedPTransform) -> bool:
        return (isinstance(applied_ptransform.transform, core.CombinePerKey)
                and applied_ptransform.inputs[0].windowing.is_default())

    def get_replacement_transform_for_applied_ptransform(self, applied_ptransform):
        transform = applied_ptransform.transform
        return LiftedCombinePerKey(transform.fn, transform.args, transform.kwargs)


@dataclasses.dataclass
class DaskRunnerResult(dask_runner.DaskRunnerResult):
    """Beam's result, closing the run's client once the run is over."""

    def wait_until_finish(self, duration=None) -> str:
        try:
            return super().wait_until_finish(duration)
        finally:
            if PipelineState.is_terminal(self._state):
                self.client.close()


class DaskRunner(dask_runner.DaskRunner):
    """Runs a Beam pipeline on a dask.distributed cluster (see the module docstring)."""

    def run_pipeline(self, pipeline, options):
        dask_options = options.view_as(dask_runner.DaskOptions).get_all_options(
            drop_default=True, current_only=True)
        bag_kwargs = dask_runner.DaskOptions._extract_bag_kwargs(dask_options)
        client = ddist.Client(**dask_options)
        try:
            pipeline.replace_all([_CombinePerKeyOverride(), _ReadOverride()])
            pipeline.replace_all(dask_overrides.dask_overrides())
            translator = _Translator(bag_kwargs, sum(client.nthreads().values()))
            pipeline.visit(translator)
            futures = [client.compute(translator.run_all())]
        except BaseException:
            client.close()
            raise
        return DaskRunnerResult(client, futures)

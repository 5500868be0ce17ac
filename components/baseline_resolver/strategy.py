"""Resolver strategies over blessed models.

PreviousBlessedModelStrategy (the Evaluator's baseline): the latest blessed Model that is not
the candidate itself.

TFX's LatestBlessedModelStrategy hands the Evaluator, on a re-run whose Trainer is served from
cache, the candidate itself as its own baseline: the Evaluator's inputs change, so it runs
again (and the Pusher pushes the same model a second time) although nothing changed. Excluding
the candidate keeps an identical re-run fully cached and compares a new model with the latest
*previous* blessed one.

BaseModelStrategy (the Trainer's base model, to warm start from): the latest blessed Model not
trained on this run's new Examples.
"""

from typing import Callable, Dict, Iterable, List, Optional, Set

from tfx import types
from tfx import v1 as tfx

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"

# Custom properties the Evaluator writes on its ModelBlessing.
_BLESSED = "blessed"
_CURRENT_MODEL_ID = "current_model_id"


def _blessed_models(blessings: List[types.Artifact]) -> Dict[int, types.Artifact]:
    """Model id -> its blessing, for the blessings that bless."""
    return {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in blessings
            if b.get_int_custom_property(_BLESSED) == 1}


def previous_blessed_model(candidates: List[types.Artifact], models: List[types.Artifact],
                           blessings: List[types.Artifact]) -> Dict[str, List[types.Artifact]]:
    """The newest blessed model (and its blessing) whose id is not a candidate's."""
    excluded = {c.id for c in candidates}
    blessed = _blessed_models(blessings)
    for model in sorted(models, key=lambda a: a.id, reverse=True):
        if model.id in blessed and model.id not in excluded:
            return {CANDIDATE_KEY: list(candidates), MODEL_KEY: [model],
                    MODEL_BLESSING_KEY: [blessed[model.id]]}
    return {CANDIDATE_KEY: list(candidates), MODEL_KEY: [], MODEL_BLESSING_KEY: []}


class PreviousBlessedModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Resolver strategy over channels `candidate`, `model` (all) and `model_blessing` (all)."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return previous_blessed_model(input_dict.get(CANDIDATE_KEY, []),
                                      input_dict.get(MODEL_KEY, []),
                                      input_dict.get(MODEL_BLESSING_KEY, []))


# ---- the Trainer's base model ------------------------------------------------------------

CURRENT_EXAMPLES_KEY = "current_examples"


def trained_on(store: mlmd.MetadataStore, model_ids: Iterable[int]) -> Dict[int, Set[int]]:
    """Model id -> the ids of the artifacts the executions that output it read (its Trainer's
    inputs; a cached Trainer execution reads the same). Resolvers hand models on as internal
    outputs, not outputs, so they do not count."""
    model_ids = list(model_ids)
    if not model_ids:
        return {}
    producers: Dict[int, Set[int]] = {m: set() for m in model_ids}
    for event in store.get_events_by_artifact_ids(model_ids):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            producers[event.artifact_id].add(event.execution_id)
    executions = sorted(set().union(*producers.values()))
    read: Dict[int, Set[int]] = {x: set() for x in executions}
    for event in store.get_events_by_execution_ids(executions) if executions else []:
        if event.type == metadata_store_pb2.Event.INPUT:
            read[event.execution_id].add(event.artifact_id)
    return {m: set().union(*(read[x] for x in producers[m])) for m in model_ids}


def base_model(current: List[types.Artifact], models: List[types.Artifact],
               blessings: List[types.Artifact],
               inputs_of: Callable[[List[int]], Dict[int, Set[int]]]
               ) -> Dict[str, List[types.Artifact]]:
    """The newest blessed model (and its blessing) not trained on this run's new Examples
    (`current`, not handed on); `inputs_of(model_ids)` gives the artifact ids each model's
    Trainer read.

    On a run with no new span ExampleGen hands on the Examples it made before, and the newest
    blessed model may be the one trained on them: taking it as the base would change the
    Trainer's inputs and retrain on data that did not change. A model trained before these
    Examples arrived gives the Trainer the inputs it had then, so it is served from cache."""
    blessed = _blessed_models(blessings)
    newest_first = sorted((m for m in models if m.id in blessed), key=lambda a: a.id,
                          reverse=True)
    current_ids = {a.id for a in current}
    read = inputs_of([m.id for m in newest_first]) if current_ids and newest_first else {}
    for model in newest_first:
        if not current_ids & read.get(model.id, set()):
            return {CURRENT_EXAMPLES_KEY: [], MODEL_KEY: [model],
                    MODEL_BLESSING_KEY: [blessed[model.id]]}
    return {CURRENT_EXAMPLES_KEY: [], MODEL_KEY: [], MODEL_BLESSING_KEY: []}


class BaseModelStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Resolver strategy over channels `current_examples` (this run's ExampleGen output),
    `model` (all) and `model_blessing` (all): the Trainer's base model (`base_model`)."""

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        return base_model(input_dict.get(CURRENT_EXAMPLES_KEY, []),
                          input_dict.get(MODEL_KEY, []),
                          input_dict.get(MODEL_BLESSING_KEY, []),
                          lambda ids: trained_on(store, ids))

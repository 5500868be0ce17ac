"""PreviousBlessedModelStrategy: the latest blessed Model that is not the candidate itself.

TFX's LatestBlessedModelStrategy hands the Evaluator, on a re-run whose Trainer is served from
cache, the candidate itself as its own baseline: the Evaluator's inputs change, so it runs
again (and the Pusher pushes the same model a second time) although nothing changed. Excluding
the candidate keeps an identical re-run fully cached and compares a new model with the latest
*previous* blessed one.
"""

from typing import Dict, List, Optional

from tfx import types
from tfx import v1 as tfx

import ml_metadata as mlmd

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
MODEL_BLESSING_KEY = "model_blessing"

# Custom properties the Evaluator writes on its ModelBlessing.
_BLESSED = "blessed"
_CURRENT_MODEL_ID = "current_model_id"


def previous_blessed_model(candidates: List[types.Artifact], models: List[types.Artifact],
                           blessings: List[types.Artifact]) -> Dict[str, List[types.Artifact]]:
    """The newest blessed model (and its blessing) whose id is not a candidate's."""
    excluded = {c.id for c in candidates}
    blessed = {b.get_int_custom_property(_CURRENT_MODEL_ID): b for b in blessings
               if b.get_int_custom_property(_BLESSED) == 1}
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

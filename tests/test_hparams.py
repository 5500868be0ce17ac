"""Hyperparameters: string overrides as a CLI or a pipeline config passes them, validated."""

import pytest

from kiko.model.hparams import HParams


def test_overrides_convert_strings_and_reject_bad_input():
    hp = HParams().with_overrides({"embedding_dim": "12", "learning_rate": "0.5",
                                   "blend": "false", "patience": 4})
    assert (hp.embedding_dim, hp.learning_rate, hp.blend, hp.patience) == (12, 0.5, False, 4)
    assert hp.to_dict()["embedding_dim"] == 12
    with pytest.raises(ValueError, match="embeding_dim"):
        HParams().with_overrides({"embeding_dim": "12"})
    with pytest.raises(ValueError, match="batch_size"):
        HParams().with_overrides({"batch_size": "large"})
    with pytest.raises(ValueError, match="blend"):
        HParams().with_overrides({"blend": "maybe"})
    with pytest.raises(ValueError, match="validation_fraction"):
        HParams().with_overrides({"validation_fraction": "1.5"})

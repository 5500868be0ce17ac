"""Everything that runs inside TensorFlow (installed as `kiko.model`).

Names: `features` (keys, signatures), `hparams`. Data: `data` (examples in memory),
`vocabulary` (ids -> dense indices). The model, along TFRS lines: `layers`, `member` (the base
of every member), `factorization` and `autorec` (the members), `blend` (the served
`RatingModel`). Training: `datasets`, `optimizers`, `training` (`train_model`), `trainer` (the
Trainer's `run_fn`). Serving: `serving` (predict, SavedModel signatures), `catalog`. Evaluation:
`slicing`, `eval_metrics`, `eval_config` (TFMA).
"""

"""Resolves blessed models: the Evaluator's baseline (the latest blessed model other than the
candidate) and the Trainer's base model (the latest blessed model not trained on this run's new
Examples)."""

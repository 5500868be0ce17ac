"""Resolves the Evaluator's baseline: the latest blessed model other than the candidate."""

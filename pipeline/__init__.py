"""Wiring of the kiko TFX pipeline and its runners."""
import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

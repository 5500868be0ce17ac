"""Custom TFX components of kiko."""
import kiko_model  # noqa: F401  (first: selects Keras 2 before TensorFlow loads)

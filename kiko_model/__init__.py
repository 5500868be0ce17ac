"""kiko: MovieLens rating prediction on TFX.

Importing this package is the one place that selects Keras 2 for TensorFlow: TFRS refuses
Keras 3, and TensorFlow decides what `tf.keras` is from TF_USE_LEGACY_KERAS when it loads.
Every entry point (runners, tests, the Trainer's run_fn, Beam workers, which inherit the
environment) imports kiko_model before TensorFlow.
"""

import os as _os
import sys as _sys
import warnings as _warnings

_LEGACY_KERAS = "TF_USE_LEGACY_KERAS"

if _os.environ.get(_LEGACY_KERAS) != "1":
    if "tensorflow" in _sys.modules:
        # Too late for this process (e.g. the `tfx` CLI compiling a runner file, which needs no
        # Keras); processes started from here still get Keras 2.
        _warnings.warn(
            f"kiko_model was imported after tensorflow without {_LEGACY_KERAS}=1: model code "
            "(TFRS) cannot run in this process. Import kiko_model before tensorflow or tfx.",
            RuntimeWarning, stacklevel=2)
    _os.environ[_LEGACY_KERAS] = "1"

# Imported by every process that loads kiko's models, Beam workers included.
from kiko_model import _exit  # noqa: E402,F401  (quiet interpreter exit with TF functions alive)

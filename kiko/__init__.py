"""kiko: MovieLens rating prediction on TensorFlow Extended.

Every kiko module lives under this package (`kiko.pipeline`, `kiko.components`, `kiko.model`,
`kiko.data`, the operator's tools), so importing any of them runs this file first. That makes it
the one place that selects Keras 2: TFRS refuses Keras 3, and TensorFlow decides what `tf.keras`
is from TF_USE_LEGACY_KERAS. Processes started from a kiko process (Beam workers, the Trainer)
inherit the variable.
"""

import os as _os
import sys as _sys
import warnings as _warnings

from kiko import _exit

_exit.install()  # a quiet interpreter exit while TensorFlow functions are alive

LEGACY_KERAS_ENV = "TF_USE_LEGACY_KERAS"

if _os.environ.get(LEGACY_KERAS_ENV) != "1":
    if "tensorflow" in _sys.modules:
        # Too late for this process (e.g. the `tfx` CLI compiling a runner file, which needs no
        # Keras); processes started from here still get Keras 2.
        _warnings.warn(
            f"kiko was imported after tensorflow without {LEGACY_KERAS_ENV}=1: model code "
            "(TFRS) cannot run in this process. Import kiko before tensorflow or tfx.",
            RuntimeWarning, stacklevel=2)
    _os.environ[LEGACY_KERAS_ENV] = "1"

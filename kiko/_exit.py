"""A quiet exit for processes that still hold TensorFlow functions (Beam workers).

TF 2.16's `AtomicFunction.__del__` updates a module-level refcount table outside its own
try/except. A Beam SDK worker that ran TFMA exits with the SavedModel still held by Beam's
`Shared` cache (it keeps the last model alive); interpreter shutdown sets that table to None
before the model is freed, and every restored function prints `Exception ignored in:
AtomicFunction.__del__ ... TypeError`. At exit nothing needs unregistering any more, so the
destructor is dropped just before shutdown (atexit runs while every module is still intact).
"""

import atexit
import sys

_ATOMIC_FUNCTION_MODULE = "tensorflow.python.eager.polymorphic_function.atomic_function"


def _drop_function_destructor() -> None:
    module = sys.modules.get(_ATOMIC_FUNCTION_MODULE)
    cls = getattr(module, "AtomicFunction", None)
    if cls is not None and "__del__" in vars(cls):
        del cls.__del__


def install() -> None:
    """Drops the destructor at exit (idempotent: atexit runs a registered function once)."""
    atexit.unregister(_drop_function_destructor)
    atexit.register(_drop_function_destructor)

"""Processes that still hold a TensorFlow model at exit (Beam workers after TFMA) exit quietly:
no `Exception ignored in: AtomicFunction.__del__` tracebacks (kiko/_exit.py)."""


import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_HOLD_MODEL = textwrap.dedent("""
    import sys
    if sys.argv[1] == "kiko":
        import kiko
    from apache_beam.utils import shared
    import tensorflow as tf

    class Holder:
        pass

    def load():
        holder = Holder()
        holder.model = tf.compat.v1.saved_model.load_v2(sys.argv[2], tags=["serve"])
        return holder

    # As TFMA does in a Beam worker: Beam's Shared cache keeps the last model alive to the end.
    shared.Shared().acquire(load)
    print("done", flush=True)
""")


@pytest.mark.slow
def test_processes_holding_a_model_exit_without_atomic_function_tracebacks(tmp_path):
    import tensorflow as tf

    ids = tf.keras.Input(shape=(), dtype=tf.int64)
    x = tf.keras.layers.IntegerLookup(vocabulary=[1, 2, 3])(ids)
    x = tf.keras.layers.Embedding(5, 2)(x)
    model = tf.keras.Model(ids, tf.keras.layers.Dense(1)(x))
    serve = tf.function(lambda ids: {"rating": model(ids)},
                        input_signature=[tf.TensorSpec([None], tf.int64)])
    path = str(tmp_path / "model")
    tf.saved_model.save(model, path, signatures={"serving_default": serve})
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")

    def stderr_of(variant):
        result = subprocess.run([sys.executable, "-c", _HOLD_MODEL, variant, path], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-3000:]
        return result.stderr

    noise = "Exception ignored in: <function AtomicFunction.__del__"
    assert noise in stderr_of("plain"), (
        "TensorFlow no longer prints these tracebacks at exit: kiko/_exit.py can go")
    assert noise not in stderr_of("kiko")

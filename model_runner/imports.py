"""Importing the native libraries of inference quickly (TensorFlow, numba).

Start-up is part of every run's time (docs/benchmarks.md
measures it), and two things in it were pure waste: Python's garbage
collector rescanning the millions of objects these imports create, and
TensorFlow's own eager import of all of Keras.
"""

import gc
import importlib
import sys

#: what ``tensorflow/__init__.py`` imports eagerly only to register Keras'
#: optimizers for TF2 SavedModels: all of Keras (and scikit-learn and
#: matplotlib where they are installed), 2-3 s of every start-up here
_KERAS_EAGER_IMPORT = "keras.src.optimizers"


def import_quickly(name: str) -> None:
    """Import module ``name`` with Python's cyclic garbage collector paused,
    then freeze what exists (``gc.freeze``: later collections skip it).
    TensorFlow, numba and LLVM create ~2,500 modules and millions of objects
    that live as long as the process; collections triggered while they are
    created scan them again and again: 1.5 s of the 5 s TensorFlow and numba
    take to import here."""
    if name in sys.modules:
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def import_tensorflow():
    """The ``tensorflow`` module, imported (``import_quickly``) without the
    eager load of Keras its ``__init__`` does, when this process has not
    imported it yet. A TF1 graph in a ``tf.compat.v1.Session`` never uses
    Keras; ``tf.keras`` and ``import keras`` still work afterwards (they load
    Keras then, on first use)."""
    if "tensorflow" not in sys.modules and _KERAS_EAGER_IMPORT not in sys.modules:
        sys.modules[_KERAS_EAGER_IMPORT] = None  # TensorFlow skips it on ImportError
        try:
            import_quickly("tensorflow")
        finally:
            if sys.modules.get(_KERAS_EAGER_IMPORT, "") is None:
                del sys.modules[_KERAS_EAGER_IMPORT]
    import tensorflow

    return tensorflow

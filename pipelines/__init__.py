"""Entry points: ``python -m pipelines.<name>``.

TensorFlow's C++ start-up messages (CUDA probing on CPU-only machines, oneDNN
notes) are noise on a correct run, so they are off unless the user sets
``TF_CPP_MIN_LOG_LEVEL`` (``0`` shows everything). Set here, before anything
imports TensorFlow, and inherited by local worker processes.

A command (``python -m pipelines.<name>``, when ``sys.argv[0]`` is still
``"-m"`` while this package is imported) starts with Python's cyclic
garbage collector paused: importing Beam creates some hundred thousand
objects that live as long as the process, and collections during the import
cost 0.4 of its 2.4 s here. ``runtime.cli_main`` freezes what was imported
and turns the collector back on before the command runs. Importing
``pipelines`` any other way (tests, notebooks) changes nothing.
"""

import gc
import os
import sys

if sys.argv[:1] == ["-m"]:
    gc.disable()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

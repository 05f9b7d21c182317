"""Entry points: ``python -m pipelines.<name>``.

TensorFlow's C++ start-up messages (CUDA probing on CPU-only machines, oneDNN
notes) are noise on a correct run, so they are off unless the user sets
``TF_CPP_MIN_LOG_LEVEL`` (``0`` shows everything). Set here, before anything
imports TensorFlow, and inherited by local worker processes.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

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

Ctrl-C (or SIGTERM) while a command starts, importing its libraries for a
few seconds, is one line and exit status 130 (143), as it is once the
command runs (``transforms.runtime.interrupt``), not a ``KeyboardInterrupt``
traceback from deep inside an import.
"""

import gc
import os
import sys


def _ended_while_starting(signum, frame):
    """Ctrl-C or SIGTERM while a command's libraries are still imported,
    before ``runtime.cli_main`` installs its own handler (``runtime.interrupt``):
    one line and exit status 128 + the signal's number, as later; nothing
    has been written yet."""
    import signal

    argv = getattr(sys, "orig_argv", [])
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else "pipelines"
    what = "interrupted (Ctrl-C)" if signum == signal.SIGINT else "terminated (SIGTERM)"
    os.write(2, f"{module.rpartition('.')[2]}: {what} while starting\n".encode())
    os._exit(128 + signum)


if sys.argv[:1] == ["-m"]:
    import signal

    gc.disable()
    signal.signal(signal.SIGINT, _ended_while_starting)
    signal.signal(signal.SIGTERM, _ended_while_starting)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

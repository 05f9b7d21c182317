"""How every pipeline runs as a command: ``--help``, exit statuses, quiet logs.

``cli_main`` turns a pipeline's ``run(argv)`` into a command: a
``UsageError`` (a flag or path to fix) is one line and exit status 2, an
``InputError`` (input found unusable before the run) one line and status 1,
any other failure one line naming it (the traceback with ``-v``). Beam's and
TensorFlow's log chatter is hidden unless ``-v``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Callable, List, Optional

from apache_beam.options.pipeline_options import PipelineOptions


class UsageError(Exception):
    """A flag or path the user can fix before anything runs (exit status 2)."""


class InputError(Exception):
    """Input found unusable before the run starts (exit status 1)."""


BEAM_OPTIONS_HELP = (
    "Beam options: standard Beam flags are accepted as well (--runner, --project, --region, "
    "--temp_location, --setup_file, --sdk_container_image, --direct_num_workers, "
    "--direct_running_mode, ...): see https://beam.apache.org/documentation/#runners and "
    "the README's 'Running on a cluster'. --help_beam lists all of them.\n"
    "-v / --verbose: show Beam's and TensorFlow's own log messages and tracebacks.")


def pipeline_help(name: str, description: str, option_classes) -> str:
    """``--help`` text: the pipeline's own flags with defaults, then a pointer to Beam's."""
    import argparse

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        def _get_help_string(self, action):  # a help text naming its default is kept as is
            text = action.help or ""
            return text if "default" in text else super()._get_help_string(action)

    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines.{name}", description=description, add_help=False,
        formatter_class=Formatter)
    group = parser.add_argument_group(f"{name} flags")
    for cls in option_classes:
        cls._add_argparse_args(group)
    return parser.format_help() + "\n" + BEAM_OPTIONS_HELP


def cli_main(name: str, run: Callable, exit_code: Callable, argv: Optional[List[str]] = None,
             option_classes=(), description: str = "") -> int:
    """Run ``run(argv)`` as a command: exit status ``exit_code(result)``.

    A ``UsageError`` is one line on stderr and status 2, an ``InputError``
    one line and status 1. Our own progress lines are logged at INFO; Beam's
    and TensorFlow's Python loggers only show errors unless ``-v`` (or
    ``--verbose``) is given, which also shows tracebacks of those errors.
    """
    import gc
    import sys

    gc.freeze()  # the libraries imported so far live as long as the process
    gc.enable()  # paused while they were imported (see ``pipelines``)
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        print(pipeline_help(name, description, option_classes))
        return 0
    if "--help_beam" in argv:
        print(beam_parser(name).format_help())
        return 0
    verbose = bool({"-v", "--verbose"} & set(argv))
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    try:
        parsed = check_arguments(name, argv)
    except UsageError as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    native = None if verbose else NativeStderrFilter().start()
    interrupt = Interrupt(name, native).install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    filtered = [] if verbose else list(logging.getLogger().handlers)
    for handler in filtered:
        handler.addFilter(_ours_or_errors)
    try:
        return exit_code(run(argv))
    except KeyboardInterrupt:
        interrupt.report(output_folders(parsed))
        return 130
    except (UsageError, InputError) as e:
        if verbose:
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except Exception as e:  # a failure inside the run: one line, the traceback with -v
        if _INTERRUPTED:  # Ctrl-C, which a Beam step re-raised as its own error
            interrupt.report(output_folders(parsed))
            return 130
        if verbose:
            raise
        lines = [line for line in str(e).splitlines() if line.strip()] or [""]
        print(f"{name}: error: {type(e).__name__}: {lines[-1][:500]} "
              f"(run again with -v for the full traceback)", file=sys.stderr)
        return 1
    finally:
        interrupt.uninstall()
        for handler in filtered:
            handler.removeFilter(_ours_or_errors)
        if native is not None:
            native.stop()


def beam_parser(name: str) -> argparse.ArgumentParser:
    """One parser holding every flag a command accepts: its own options
    classes and Beam's (every ``PipelineOptions`` subclass imported, the
    Flink and Spark runners' included), as Beam itself parses them."""
    import importlib

    for module in ("apache_beam.runners.portability.flink_runner",
                   "apache_beam.runners.portability.spark_runner"):
        try:  # runner options Beam registers only when the runner's module is imported
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - an install without that runner
            pass

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # argparse prints its usage block and exits: one line instead
            raise UsageError(message)

    parser = Parser(prog=f"python -m pipelines.{name}", allow_abbrev=False, add_help=False)
    seen = set()
    for cls in PipelineOptions.__subclasses__():
        if str(cls) not in seen:  # as PipelineOptions.get_all_options
            seen.add(str(cls))
            cls._add_argparse_args(parser)
    return parser


def check_arguments(name: str, argv: List[str]) -> argparse.Namespace:
    """Refuse what the command does not understand (UsageError, one line):
    a flag neither the command nor Beam defines (with Beam's close-match
    suggestion), a value argparse refuses (a choice not offered, a number
    that is not one), and a stray positional argument: most often the second
    file of an unquoted glob the shell expanded."""
    import difflib

    parser = beam_parser(name)
    parsed, unknown = parser.parse_known_args(argv)
    for arg in unknown:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            known = [o for action in parser._actions for o in action.option_strings]
            close = difflib.get_close_matches(flag, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown flag {flag}{hint}; --help lists the command's flags, "
                             f"--help_beam Beam's")
        raise UsageError(
            f"unexpected argument {arg!r}: every value follows its flag; a glob must be quoted "
            f"(--input_data_path 'shards/*.tfrecord.gz') or the shell expands it into "
            f"several arguments")
    check_values(parsed)
    return parsed


#: The values a run can mean, by flag: (lowest, highest, lowest allowed?,
#: highest allowed?); None: unbounded on that side. Every value must also be
#: finite. A flag a command does not define is not checked.
FLAG_RANGES = {
    "time_tolerance_minutes": (0, None, True, True),
    "num_workers": (1, None, True, True),
    "direct_num_workers": (0, None, True, True),  # Beam: 0 = one per core
    "progress_seconds": (0, None, True, True),
    "tensorflow_threads": (0, None, True, True),  # 0: the default
    "image_size": (1, None, True, True),
    "batch_size": (1, None, True, True),
    "num_inference_samples": (0, None, True, True),
    "num_skip_samples": (0, None, True, True),
    "train_fraction": (0, 1, True, True),
    "validation_fraction": (0, 1, True, True),
    "min_samples_per_sensor": (1, None, True, True),
    "timeseries_sensors": (0, None, True, True),
    "ci_level": (0, 1, False, False),
    "bootstrap_samples": (0, None, True, True),
    "anomaly_window_days": (0, None, False, True),
    "epochs": (1, None, True, True),
    "train_batch_size": (1, None, True, True),
    "learning_rate": (0, None, False, True),
    "patience": (0, None, True, True),
    "shuffle_buffer_mb": (0, None, False, True),
}


def accepted_range(low, high, low_in: bool, high_in: bool) -> str:
    """``FLAG_RANGES`` entry -> words: "0 or more", "between 0 and 1 (both excluded)"."""
    if high is None:
        return f"{low} or more" if low_in else f"more than {low}"
    ends = {(True, True): "both included", (False, False): "both excluded",
            (True, False): f"{high} excluded", (False, True): f"{low} excluded"}
    return f"between {low} and {high} ({ends[(low_in, high_in)]})"


def check_values(parsed: argparse.Namespace) -> None:
    """Raise UsageError naming the first flag of ``FLAG_RANGES`` whose value
    no run can mean (outside its range, NaN or infinite), with its range."""
    import math

    for flag, (low, high, low_in, high_in) in FLAG_RANGES.items():
        value = getattr(parsed, flag, None)
        if value is None or isinstance(value, str):
            continue
        ok = math.isfinite(value) and (value >= low if low_in else value > low)
        if high is not None:
            ok = ok and (value <= high if high_in else value < high)
        if not ok:
            raise UsageError(f"--{flag} must be {accepted_range(low, high, low_in, high_in)}, "
                             f"not {value}")
    train = getattr(parsed, "train_fraction", None)
    validation = getattr(parsed, "validation_fraction", None)
    if train is not None and validation is not None and train + validation > 1:
        raise UsageError(f"--train_fraction + --validation_fraction must be at most 1, not "
                         f"{train} + {validation}")


class Interrupt:
    """Ctrl-C: one line and exit status 130 instead of tracebacks.

    SIGINT reaches every process of the group, Beam's worker processes
    included, which print their own ``KeyboardInterrupt`` tracebacks onto
    the stderr they share with us and log them through Beam's logging
    service, while Beam's threads in this process report the workers' end.
    ``install`` points Python's wakeup file descriptor at ``native`` (the
    stderr filter), which the signal's C handler writes to at once, so the
    filter drops what the workers print from then on; our SIGINT handler
    silences other libraries' log records and thread tracebacks before
    raising ``KeyboardInterrupt``. ``report`` removes what the run left under
    temporary names in ``output_folders`` (each ``(folder, prefix)``) and
    prints the one line.
    """

    def __init__(self, name: str, native: Optional["NativeStderrFilter"]):
        self.name = name
        self.native = native
        self._previous_fd = None
        self._previous_handler = None

    def install(self) -> "Interrupt":
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only (tests calling cli_main)
        if self.native is not None:
            self._previous_fd = signal.set_wakeup_fd(self.native.wakeup_fd)
        self._previous_handler = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        import threading

        global _INTERRUPTED
        _INTERRUPTED = True
        if self.native is not None:
            self.native.silence()
            threading.excepthook = lambda args: None  # Beam's threads see their workers end
        raise KeyboardInterrupt

    def uninstall(self) -> None:
        import signal

        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def report(self, output_folders) -> None:
        import sys

        from transforms.dataset import files

        for folder, prefix in output_folders:
            try:
                files.remove_stale_temporaries(folder, prefix)
            except Exception:  # noqa: BLE001 - best effort; the next run removes them too
                pass
        print(f"{self.name}: interrupted (Ctrl-C); the temporary files of its outputs were removed",
              file=sys.stderr)


def output_folders(parsed: argparse.Namespace):
    """``(folder, prefix)`` of each output a command's flags name, for
    ``files.remove_stale_temporaries``: ``--output_dir`` (everything in it)
    and ``--output_path`` (its folder, files named after its prefix)."""
    import posixpath

    import os

    folders = []
    if getattr(parsed, "output_dir", None):
        folders.append((parsed.output_dir, ""))
        if os.path.isdir(parsed.output_dir):  # a local folder's own folders (train's)
            folders += [(entry.path, "") for entry in os.scandir(parsed.output_dir)
                        if entry.is_dir() and not entry.name.startswith("beam-temp-")]
    if getattr(parsed, "output_path", None):
        folder, prefix = posixpath.split(parsed.output_path)
        folders.append((folder or ".", prefix))
    return folders


_INTERRUPTED = False


def exit_process(code: int) -> None:
    """End the process now with ``code``, once what was printed and logged is
    flushed. A command that loaded TensorFlow (and numba, and Beam's runner)
    otherwise spends 2-3 s of interpreter teardown here after its last
    output, writing nothing: every output file was already written, each
    atomically, and every thread it started has finished its work."""
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_OWN_LOGGERS = ("transforms", "pipelines", "model_runner", "__main__")


def _ours_or_errors(record: logging.LogRecord) -> bool:
    """Our own log records at any level; other libraries' (Beam, TensorFlow,
    and those logging on the root logger) only from ERROR up."""
    if _INTERRUPTED:  # after Ctrl-C: the one line says it
        return False
    return record.name.startswith(_OWN_LOGGERS) or record.levelno >= logging.ERROR


class NativeStderrFilter:
    """Drops the start-up chatter native libraries write straight to file
    descriptor 2 (TensorFlow's absl INFO/WARNING lines, its "All log messages
    before absl::InitializeLog()" notice, CUDA probing errors on machines
    without a GPU, oneDNN's note that a CPU without AVX-512 computes float16 with Eigen), which ``TF_CPP_MIN_LOG_LEVEL`` no longer silences before
    absl logging is initialised. Everything else is passed on unchanged.

    Python's own ``sys.stderr`` keeps writing to the real stderr; only native
    writes (and worker subprocesses, which inherit the descriptor) go through
    the filter thread.
    """

    import re as _re
    DROP = _re.compile(
        rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
        rb"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "
        rb"|E\d{4} [\d:.]+ +\d+ \S+:\d+\] .*(cuInit|CUDA|cuda|Unable to register cu"
        rb"|oneDNN supports DT_HALF only))")

    def start(self) -> "NativeStderrFilter":
        import os
        import sys
        import threading

        sys.stderr.flush()
        self._saved = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._python_stderr = sys.stderr
        sys.stderr = open(os.dup(self._saved), "w", buffering=1, closefd=True)
        self._reader = os.fdopen(read_fd, "rb")
        self._silenced = threading.Event()
        self._wakeup_read, self.wakeup_fd = os.pipe()
        os.set_blocking(self.wakeup_fd, False)
        os.set_blocking(self._wakeup_read, False)
        self._thread = threading.Thread(target=self._pump, name="stderr-filter", daemon=True)
        self._thread.start()
        return self

    def silence(self) -> None:
        """Drop everything written to stderr from now on (after Ctrl-C)."""
        self._silenced.set()

    def _pump(self) -> None:
        import os
        import select
        import signal

        for line in self._reader:
            # the wakeup pipe holds the number of each signal Python caught (see ``Interrupt``)
            if select.select([self._wakeup_read], [], [], 0)[0]:
                if signal.SIGINT in os.read(self._wakeup_read, 512):
                    self._silenced.set()
            if not self._silenced.is_set() and not self.DROP.match(line):
                os.write(self._saved, line)

    def stop(self) -> None:
        import os
        import sys

        sys.stderr.flush()
        os.dup2(self._saved, 2)  # closes the pipe's last write end: the pump sees its end
        self._thread.join(timeout=5)
        for fd in (self._wakeup_read, self.wakeup_fd):
            os.close(fd)
        sys.stderr.close()
        sys.stderr = self._python_stderr

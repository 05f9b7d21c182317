"""How every pipeline runs as a command: ``--help``, exit statuses, quiet logs.

``cli_main`` turns a pipeline's ``run(argv)`` into a command: a
``UsageError`` (a flag or path to fix) is one line and exit status 2, an
``InputError`` (input found unusable before the run) one line and status 1,
any other failure one line naming it (the traceback with ``-v``), Ctrl-C
one line and status 130, SIGTERM one line and 143. Beam's and TensorFlow's
log chatter is hidden unless ``-v``. A command that builds no Beam pipeline
(``cut_examples``) runs through it too, with ``beam=False``: the same
``--help``, ``-v``, signals and one-line errors, its flags checked alone.
"""

from __future__ import annotations

import logging
from typing import Callable, List, Optional

from transforms.runtime import interrupt as interrupt_module
from transforms.runtime.arguments import (beam_parser, check_arguments, check_reachable,
                                          cloud_paths, command_parser, required_note)
from transforms.runtime.errors import InputError, UsageError
from transforms.runtime.interrupt import Interrupt, output_folders, remove_temporaries

__all__ = ["InputError", "UsageError", "cli_main", "exit_process", "no_beam_help",
           "pipeline_help"]

BEAM_OPTIONS_HELP = (
    "Beam options: standard Beam flags are accepted as well (--runner, --project, --region, "
    "--temp_location, --setup_file, --sdk_container_image, --direct_num_workers, "
    "--direct_running_mode, ...): see https://beam.apache.org/documentation/#runners and "
    "the README's 'Running on a cluster'. --help_beam lists all of them.\n"
    "-v / --verbose: show Beam's and TensorFlow's own log messages and tracebacks.")
NO_BEAM_HELP = ("This command builds no Beam pipeline: it takes no Beam flags.\n"
                "-v / --verbose: show tracebacks.")


def pipeline_help(name: str, description: str, option_classes, beam: bool = True) -> str:
    """``--help`` text: the command's own flags, then a pointer to Beam's.

    Args:
        name: the command (``predict_map``).
        description: what it does, printed first.
        option_classes: the classes defining its flags (``_add_argparse_args``).
        beam: False for a command that builds no Beam pipeline: no pointer
            to Beam's flags then, but a line saying it takes none.

    Returns:
        The text: every flag with its help, marked ``(required)`` (or
        ``(required unless --x is given)``, see ``arguments.REQUIRED_FLAGS``)
        when a run cannot do without it, else with its default unless the
        help names it or there is none to show (None, "" or a switch's
        False: the help says what happens without the flag).
    """
    import argparse

    defined = set()

    class Formatter(argparse.ArgumentDefaultsHelpFormatter):
        def _get_help_string(self, action):
            text = action.help or ""
            note = required_note(action, defined)
            if note:
                return text if "required" in text else f"{text} ({note})".strip()
            if "default" in text or action.default is None or action.default is False \
                    or action.default == "":
                return text  # nothing to show: the help says what happens without the flag
            return super()._get_help_string(action)

    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines.{name}", description=description, add_help=False,
        formatter_class=Formatter)
    group = parser.add_argument_group(f"{name} flags")
    for cls in option_classes:
        cls._add_argparse_args(group)
    defined.update(o for action in parser._actions for o in action.option_strings)
    return parser.format_help() + "\n" + (BEAM_OPTIONS_HELP if beam else NO_BEAM_HELP)


def no_beam_help(name: str) -> str:
    """What ``--help_beam`` answers for a command that builds no Beam pipeline."""
    return (f"{name} builds no Beam pipeline (it runs in this process), so it takes no Beam "
            f"flags; --help lists its own.")


def cli_main(name: str, run: Callable, exit_code: Callable, argv: Optional[List[str]] = None,
             option_classes=(), description: str = "", beam: bool = True) -> int:
    """Run ``run(argv)`` as a command.

    A ``UsageError`` is one line on stderr and status 2, an ``InputError``
    one line and status 1, any other failure one line and status 1 (its
    traceback with ``-v``); Ctrl-C (SIGINT) one line and status 130,
    SIGTERM one line and status 143, the run's temporary files removed
    either way. Our own progress lines are logged at INFO; Beam's and
    TensorFlow's Python loggers only show errors unless ``-v`` (or
    ``--verbose``) is given, which also shows tracebacks of those errors.

    Args:
        name: the command, the first word of each of its error lines.
        run: the command's ``run(argv)``.
        exit_code: the exit status of ``run``'s result.
        argv: the arguments (default ``sys.argv[1:]``).
        option_classes: the classes defining the command's own flags, for
            ``--help``.
        description: what the command does, for ``--help``.
        beam: False for a command that builds no Beam pipeline: its flags
            are checked against ``option_classes`` alone (a required one
            missing is a usage error), and ``--help_beam`` says it takes no
            Beam flags.

    Returns:
        The exit status.
    """
    import gc
    import sys

    gc.freeze()  # the libraries imported so far live as long as the process
    gc.enable()  # paused while they were imported (see ``pipelines``)
    argv = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(argv):
        return print_help(pipeline_help(name, description, option_classes, beam))
    if "--help_beam" in argv:
        return print_help(beam_parser(name).format_help() if beam else no_beam_help(name))
    verbose = bool({"-v", "--verbose"} & set(argv))
    argv = [a for a in argv if a not in ("-v", "--verbose")]
    try:
        parsed = check_arguments(name, argv,
                                 None if beam else command_parser(name, option_classes))
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
        if not getattr(parsed, "dry_run", False):  # a dry run builds the job and reads nothing
            check_reachable(cloud_paths(parsed, argv))
        return exit_code(run(argv))
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (``Interrupt``)
        return interrupt.report(output_folders(parsed))
    except (UsageError, InputError) as e:
        if verbose:
            raise
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except Exception as e:  # a failure inside the run: one line, the traceback with -v
        if interrupt_module.INTERRUPTED:  # a signal, which a Beam step re-raised as its own error
            return interrupt.report(output_folders(parsed))
        remove_temporaries(output_folders(parsed))  # the failed run's own, under temporary names
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


def print_help(text: str) -> int:
    """Print ``text`` (help) on stdout; returns 0, also when the reader has
    closed the pipe (``--help | head``), which is not an error."""
    import os
    import sys

    try:
        print(text, flush=True)
    except BrokenPipeError:  # what is left to flush goes nowhere, not into a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def plural(n: int, word: str) -> str:
    """``1 example``, ``2 examples``: a count in a printed line.

    Args:
        n: the count.
        word: the singular noun (its plural adds ``s``).

    Returns:
        The count and the noun.
    """
    return f"{n} {word}{'' if n == 1 else 's'}"


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
    and those logging on the root logger) only from ERROR up, and only one-line
    messages: a failing step's traceback, which Beam logs before raising,
    reaches the user as the command's one-line error (all of it with -v)."""
    if interrupt_module.INTERRUPTED:  # after Ctrl-C: the one line says it
        return False
    if record.name.startswith(_OWN_LOGGERS):
        return True
    return (record.levelno >= logging.ERROR and not record.exc_info
            and "\n" not in record.getMessage())


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
        """Drop everything written to stderr from now on (after Ctrl-C or SIGTERM)."""
        self._silenced.set()

    def _pump(self) -> None:
        import os
        import select
        import signal

        for line in self._reader:
            # the wakeup pipe holds the number of each signal Python caught (see ``Interrupt``)
            if select.select([self._wakeup_read], [], [], 0)[0]:
                if {signal.SIGINT, signal.SIGTERM} & set(os.read(self._wakeup_read, 512)):
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

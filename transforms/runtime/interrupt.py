"""Ctrl-C as one line and exit status 130 (SIGTERM: 143), and the temporary
files of a run that ended early (``cli.cli_main``)."""

from __future__ import annotations

import argparse
from typing import Dict, List


#: The signals a command ends on with one line, cleaning up as it goes, and
#: what the line says; the exit status is 128 + the signal's number, as a
#: shell reports a process the signal killed (130, 143).
SIGNALS = {"SIGINT": "interrupted (Ctrl-C)", "SIGTERM": "terminated (SIGTERM)"}


class Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM: one line and exit status 130 or 143
    instead of tracebacks, or a process killed with its temporary files left.

    SIGINT reaches every process of the group, Beam's worker processes
    included, which print their own ``KeyboardInterrupt`` tracebacks onto
    the stderr they share with us and log them through Beam's logging
    service, while Beam's threads in this process report the workers' end.
    ``install`` points Python's wakeup file descriptor at ``native`` (the
    stderr filter), which the signal's C handler writes to at once, so the
    filter drops what the workers print from then on; our handler silences
    other libraries' log records and thread tracebacks before raising
    ``KeyboardInterrupt``. SIGTERM (``kill``, a batch system's time limit)
    takes the same way: its default would end the process at once, leaving
    the map being assembled and Beam's temporary folders in ``TMPDIR``,
    where the ``KeyboardInterrupt`` unwinds every ``with`` block that
    removes them; as it reaches this process alone (Ctrl-C reaches the
    whole process group), the handler passes it on to the processes below
    this one (Beam's workers, which the run would otherwise wait for).
    ``report`` removes what the run left under temporary names in
    ``output_folders`` (each ``(folder, prefix)``) and the local folders of
    the pipelines it made, prints the one line and returns the exit status.

    Args:
        name: the command, the first word of the line.
        native: the ``cli.NativeStderrFilter`` in use, or None.
    """

    def __init__(self, name: str, native):
        self.name = name
        self.native = native
        self.signum = None  # the signal that ended the run
        self._previous_fd = None
        self._previous_handlers = {}

    def install(self) -> "Interrupt":
        """Handle ``SIGNALS`` from now on (in the main thread only: signals reach no other)."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only (tests calling cli_main)
        if self.native is not None:
            self._previous_fd = signal.set_wakeup_fd(self.native.wakeup_fd)
        for name in SIGNALS:
            number = getattr(signal, name)
            self._previous_handlers[number] = signal.signal(number, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        import os
        import signal
        import threading

        global INTERRUPTED
        INTERRUPTED = True
        self.signum = signum
        if signum == signal.SIGTERM:  # unlike Ctrl-C's, it reached this process alone
            for pid in descendants(os.getpid()):  # Beam's workers would keep the run waiting
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:  # ended meanwhile
                    pass
        if self.native is not None:
            self.native.silence()
            threading.excepthook = lambda args: None  # Beam's threads see their workers end
        raise KeyboardInterrupt

    def uninstall(self) -> None:
        """Put back the handlers (and wakeup descriptor) ``install`` replaced."""
        import signal

        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None
        for number, handler in self._previous_handlers.items():
            signal.signal(number, handler)
        self._previous_handlers = {}

    def report(self, output_folders) -> int:
        """Remove the run's temporary files and print the one line.

        Args:
            output_folders: ``(folder, prefix)`` of each output (``output_folders``).

        Returns:
            The exit status: 128 + the signal's number (130 for Ctrl-C, and
            for a ``KeyboardInterrupt`` no signal of ours raised).
        """
        import signal
        import sys

        remove_temporaries(output_folders)
        remove_pipeline_folders()  # the process ends: none of its pipelines will run
        signum = self.signum or signal.SIGINT
        what = SIGNALS.get(signal.Signals(signum).name, "interrupted")
        print(f"{self.name}: {what}; the temporary files of its outputs were removed",
              file=sys.stderr)
        return 128 + int(signum)


def descendants(pid: int) -> List[int]:
    """The processes below ``pid`` (its children, theirs, ...), from
    ``/proc`` (Linux; none found elsewhere).

    Args:
        pid: a process id.

    Returns:
        Their ids, parents before children.
    """
    import os

    children: Dict[int, List[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            parent = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def remove_temporaries(output_folders) -> None:
    """Remove what a run that ended early left under temporary names in each
    ``(folder, prefix)`` (best effort: the next run removes them too)."""
    from transforms.dataset import files

    for folder, prefix in output_folders:
        try:
            files.remove_stale_temporaries(folder, prefix)
        except Exception:  # noqa: BLE001
            pass


def remove_pipeline_folders() -> None:
    """A Beam ``Pipeline`` makes a local temporary folder
    (``TMPDIR/beam-pipeline-temp*``) when it is made and removes it when its
    ``run`` ends: a signal between the two (while the pipeline is built, or
    a progress thread starts) leaves it. Remove those of the pipelines this
    process made (found among its live objects: never another process's),
    when it ends: a pipeline not run yet needs its folder."""
    import gc
    import shutil
    import sys

    module = sys.modules.get("apache_beam.pipeline")
    if module is None:
        return
    for obj in gc.get_objects():
        if isinstance(obj, module.Pipeline) and getattr(obj, "local_tempdir", None):
            shutil.rmtree(obj.local_tempdir, ignore_errors=True)


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


INTERRUPTED = False  # set by the SIGINT and SIGTERM handler

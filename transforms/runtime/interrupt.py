"""Ctrl-C as one line and exit status 130, and the temporary files of a run
that ended early (``cli.cli_main``)."""

from __future__ import annotations

import argparse


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

    def __init__(self, name: str, native):
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

        global INTERRUPTED
        INTERRUPTED = True
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

        remove_temporaries(output_folders)
        print(f"{self.name}: interrupted (Ctrl-C); the temporary files of its outputs were removed",
              file=sys.stderr)


def remove_temporaries(output_folders) -> None:
    """Remove what a run that ended early left under temporary names in each
    ``(folder, prefix)`` (best effort: the next run removes them too)."""
    from transforms.dataset import files

    for folder, prefix in output_folders:
        try:
            files.remove_stale_temporaries(folder, prefix)
        except Exception:  # noqa: BLE001
            pass


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


INTERRUPTED = False  # set by the SIGINT handler

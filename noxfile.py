"""``make test-all-pythons``: the test suite on every supported Python found here.

Each supported version (3.11, 3.12, 3.13) is looked up as ``python3.X`` on
PATH and in pyenv's folder; one that is not installed is reported and
skipped. Each session installs the project with ``constraints.txt`` (its
environment markers pick the pins that differ between versions) and runs
``pytest``; arguments after ``--`` go to pytest.
"""

import glob
import os
import shutil
import subprocess

import nox

SUPPORTED = ("3.11", "3.12", "3.13")


def _interpreter(version: str):
    """A working ``python<version>``: pyenv's shims exist for versions that are
    installed but not selected, and fail, so each candidate is tried."""
    pyenv = os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")
    for candidate in [shutil.which(f"python{version}"), *sorted(glob.glob(pyenv))]:
        if candidate and subprocess.run([candidate, "-c", "pass"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


FOUND = {v: _interpreter(v) for v in SUPPORTED}
nox.options.error_on_missing_interpreters = False


@nox.session(python=[p for p in FOUND.values() if p])
def tests(session):
    session.install("-c", "constraints.txt", "-e", ".[test]")
    session.run("pytest", "-q", "tests", *session.posargs)


@nox.session(python=False)
def missing(session):
    """Say which supported Pythons were not found (their sessions do not run)."""
    for version, path in FOUND.items():
        session.log(f"Python {version}: {path or 'not found, skipped'}")

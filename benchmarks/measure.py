"""Run a command as a whole process and report its wall time and peak RSS.

    python benchmarks/measure.py CMD [ARGS...]   -> one JSON line on stderr's last line

The benchmarks start every timed command through this small script: a
process forked from a large parent (one that already imported TensorFlow)
inherits the parent's resident-set high-water mark, so ``wait4``'s
``ru_maxrss`` would report the parent's size; forked from this script, it is
the command's own.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def measured(argv, cwd=None):
    """``(seconds, peak RSS MB, stdout, CPU seconds (user and system))`` of
    ``argv`` run through this script."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        done = subprocess.run([sys.executable, os.path.abspath(__file__), *argv], cwd=cwd,
                              stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        lines = err.read().decode().splitlines()
        if done.returncode:
            raise SystemExit(f"{argv[:4]} failed:\n" + "\n".join(lines[-40:]))
        figures = json.loads(lines[-1])
        return (figures["seconds"], figures["peak_mb"], out.read().decode(),
                figures["cpu_seconds"])


def main():
    start = time.time()
    proc = subprocess.Popen(sys.argv[1:], stderr=subprocess.PIPE)
    _, err = proc.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stderr.write(err.decode(errors="replace"))
    sys.stderr.write("\n" + json.dumps({"seconds": time.time() - start,
                                        "peak_mb": usage.ru_maxrss / 1024,
                                        "cpu_seconds": usage.ru_utime + usage.ru_stime}) + "\n")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()

"""``make mutate``: mutation testing of the modules that hold the rules, with mutmut.

For each module below, mutmut (3.x) mutates that module alone in a scratch
copy of the tracked files and runs the tests listed for it (only those that
cover the mutated function, which mutmut finds by itself). A mutant is
*killed* when a test fails. The score printed per module is

    (killed + timeout) / all mutants not listed as equivalent

so code no selected test reaches counts against it (a mutant that makes the
tests hang past mutmut's timeout counts as killed: it was detected). Surviving mutants that
are equivalent (no behaviour can tell them apart) are listed with their
reason in ``tests/mutation_equivalents.txt`` and reported apart.

    python tests/mutate.py [--modules transforms/merge/rules.py ...] [--jobs 2]

Runs on the CPU only; on 2 cores about 20 minutes for all modules but
``decode.py``, whose tests run TensorFlow ops, so each of its mutants is
forked from a server that imported TensorFlow but never ran an op
(``FORK_UNSAFE``): about 25 minutes more.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: module -> the in-process tests that check its rules (fast enough to run per mutant)
MODULES: Dict[str, List[str]] = {
    # the released ISMN rules: station, sensor, the reading window
    "transforms/merge/rules.py": ["tests/test_ismn_rules.py", "tests/test_pipeline_rules.py"],
    "transforms/insitu/listing.py": ["tests/test_ismn_rules.py", "tests/test_pipeline_rules.py"],
    "transforms/insitu/window.py": ["tests/test_ismn_rules.py", "tests/test_pipeline_rules.py"],
    # the dataset's wire format, TFRecord framing and the decoding rules
    "transforms/dataset/example_proto.py": ["tests/test_example_proto.py", "tests/test_fuzz_readers.py"],
    "transforms/dataset/tfrecord_io.py": ["tests/test_tfrecord_io.py", "tests/test_fuzz_readers.py"],
    "transforms/dataset/decode.py": ["tests/test_decode.py"],
    # failure accounting: the failure record, the shard walk, the merge's scan and per-shard sums
    "transforms/dataset/failures.py": ["tests/test_records.py"],
    "transforms/dataset/keys.py": ["tests/test_records.py"],
    "transforms/dataset/walks.py": ["tests/test_records.py"],
    "transforms/merge/scan.py": ["tests/test_records.py", "tests/test_pipeline_rules.py"],
    "transforms/merge/accounting.py": ["tests/test_records.py"],
    # metric formulas and the sensor split
    "transforms/evaluation/metrics.py": ["tests/test_metrics.py", "tests/test_intervals.py"],
    # anomalies (pytesmo's moving average, Julian dates) and paired statistics
    "transforms/evaluation/series.py": ["tests/test_intervals.py"],
    "transforms/dataset/splits.py": ["tests/test_metrics.py"],
}

#: a mutant that makes a test fail, or hang past mutmut's timeout, is detected
DETECTED = ("killed", "timeout")

#: modules whose tests run TensorFlow ops: TensorFlow's runtime does not survive
#: a fork once it has run an op (its thread pools stay behind in the parent, and
#: a forked test then hangs until mutmut's timeout, which would count as
#: "detected"), so their mutants are forked from a server that has only
#: imported the modules in ``_PRELOAD`` and never run an op
FORK_UNSAFE = {"transforms/dataset/decode.py"}
_PRELOAD = ("numpy", "numba", "hypothesis", "tensorflow", "transforms.dataset.varints",
            "transforms.dataset.example_proto")

_CONFIG = """[mutmut]
source_paths=transforms/
only_mutate={module}
also_copy=pipelines/
    model_runner/
pytest_add_cli_args_test_selection={tests}
    -p
    no:cacheprovider
{isolation}"""


def _equivalents() -> Dict[str, str]:
    path = os.path.join(REPO, "tests", "mutation_equivalents.txt")
    out = {}
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def _scratch_copy(dest: str) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if rel.startswith(("mutants/", "sample_data/", "bench_data/")):
            continue
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)) or dest, exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def mutate(module: str, tests: List[str], jobs: int, keep: str = "") -> Dict[str, object]:
    """Run mutmut on ``module``; ``keep``: a folder to work in and leave behind
    (for ``mutmut show`` / ``mutmut browse`` there), else a temporary one."""
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        work = keep or tmp
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
        _scratch_copy(work)
        isolation = ""
        if module in FORK_UNSAFE:
            with open(os.path.join(work, "preload.txt"), "w") as f:
                f.write("\n".join(_PRELOAD) + "\n")
            isolation = ("process_isolation=forkserver\nforkserver_warmup=import\n"
                         "preload_modules_file=preload.txt\n")
        with open(os.path.join(work, "setup.cfg"), "w") as f:
            f.write(_CONFIG.format(module=module, tests="\n    ".join(tests), isolation=isolation))
        env = {**os.environ, "HYPOTHESIS_PROFILE": "mutation", "TF_CPP_MIN_LOG_LEVEL": "3"}
        start = time.time()
        subprocess.run([mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        listing = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env,
                                 capture_output=True, text=True).stdout
    results = dict(re.findall(r"^\s*(\S+): (.+)$", listing, re.M))
    return {"results": results, "seconds": time.time() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", default=list(MODULES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", default="",
                        help="work in this folder and keep it (one module), for mutmut show")
    args = parser.parse_args(argv)
    equivalent = _equivalents()
    print(f"{'module':32} {'killed':>7} {'total':>6} {'score':>6}  "
          f"survived  no-tests  equivalent  seconds", flush=True)
    for module in args.modules:
        out = mutate(module, MODULES[module], args.jobs, args.keep)
        results = out["results"]
        counts = Counter(results.values())
        eq = [n for n, r in results.items() if r not in DETECTED and n in equivalent]
        total = len(results) - len(eq)
        killed = sum(counts[r] for r in DETECTED)
        score = killed / total if total else 1.0
        print(f"{module:32} {killed:7d} {total:6d} {score:6.1%}  {counts['survived']:8d}  "
              f"{counts['no tests']:8d}  {len(eq):10d}  {out['seconds']:7.0f}", flush=True)
        for name, result in sorted(results.items()):
            if result not in DETECTED and name not in equivalent:
                print(f"    {result:10} {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

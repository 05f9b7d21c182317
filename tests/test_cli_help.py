"""Every command answers --help and --help_beam alone with exit status 0;
--help marks the flags a run cannot do without as required (never
"(default: None)") and gives every flag a help text (issue 29, item 7).

The commands run in this process (``main(argv)``); one without ``main``
(``make_sample_data`` while it parses its own flags) in a subprocess."""

import importlib
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: command -> the flags a run cannot do without (some unless a stand-in is
#: given: run_inference's sample mode, evaluate's shards), from the README
REQUIRED = {
    "combine_ismn_data": {"--ismn_data_path", "--output_dir"},
    "run_inference": {"--exported_model_dir", "--output_path"},
    "evaluate": {"--output_dir", "--predictions"},
    "train": {"--output_dir"},
    "predict_map": {"--scene_path", "--exported_model_dir", "--output_path"},
    "cut_examples": {"--scene_path", "--output_dir"},
    "make_sample_data": {"--output_dir"},
}
NO_BEAM = ("cut_examples", "make_sample_data")  # they build no Beam pipeline


def answer(command, argv, capfd):
    """``(exit status, stdout, stderr)`` of the command given ``argv``."""
    module = importlib.import_module(f"pipelines.{command}")
    if hasattr(module, "main"):
        capfd.readouterr()
        rc = module.main(list(argv))
        out, err = capfd.readouterr()
        return rc, out, err
    proc = subprocess.run([sys.executable, "-m", f"pipelines.{command}", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def flag_entries(help_text):
    """``{--flag: its help text}`` of an argparse help: an entry starts at a
    line ``  --flag ...`` (or ``  -h, --help``); its text follows on that
    line after two spaces or more, and on the lines indented below it."""
    entries, current = {}, None
    for line in help_text.splitlines():
        start = re.match(r"^  (?:-\w, )?(--\w+)(.*)$", line)
        if start:
            current = start.group(1)
            words = re.split(r"\s{2,}", start.group(2), maxsplit=1)  # metavar, text
            entries[current] = words[1].strip() if len(words) > 1 else ""
        elif current and re.match(r"^\s{10,}\S", line):
            entries[current] = (entries[current] + " " + line.strip()).strip()
        else:
            current = None
    return entries


def test_flag_entries_reads_argparse_help():
    text = ("options:\n  -h, --help            show this help\n  --a A                 one\n"
            "                        and more\n  --long_flag LONG_FLAG\n"
            "                        two (required)\n  --bare BARE\n\nnext\n")
    assert flag_entries(text) == {"--help": "show this help", "--a": "one and more",
                                  "--long_flag": "two (required)", "--bare": ""}


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_help_and_help_beam_answer_alone_with_exit_0(command, capfd):
    rc, out, err = answer(command, ["--help"], capfd)
    assert rc == 0 and ("--output_dir" in out or "--output_path" in out), err[-2000:]
    rc, out, err = answer(command, ["--help_beam"], capfd)
    assert rc == 0, err[-2000:]
    if command in NO_BEAM:
        assert out.strip() == (f"{command} builds no Beam pipeline (it runs in this process), "
                               f"so it takes no Beam flags; --help lists its own.")
    else:
        assert "--runner" in out and "--direct_num_workers" in out


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_help_marks_required_flags_and_gives_every_flag_a_text(command, capfd):
    rc, out, _ = answer(command, ["--help"], capfd)
    assert rc == 0
    assert "(default: None)" not in out and "(default: )" not in out
    entries = flag_entries(out)
    assert entries and not [flag for flag, text in entries.items() if not text]
    marked = {flag for flag, text in entries.items() if "(required" in text}
    assert marked == REQUIRED[command], marked
    if command == "cut_examples":  # the CSV it reads
        assert "sensor_id,lat,lon" in out


@pytest.mark.parametrize("command", sorted(set(REQUIRED) - {"make_sample_data"}))
def test_a_run_without_arguments_names_required_flags_in_one_line(command, capfd):
    rc, _, err = answer(command, [], capfd)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith(f"{command}: error: "), err
    named = set(re.findall(r"--\w+", lines[0]))
    _, out, _ = answer(command, ["--help"], capfd)
    marked = {flag for flag, text in flag_entries(out).items() if "(required" in text}
    assert named and named <= marked, (named, marked)

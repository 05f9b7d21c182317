"""Every flag the README's command examples and the entry points' docstrings
name exists in that command's ``--help_beam`` (its own flags and Beam's)."""

import functools
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("combine_ismn_data", "run_inference", "evaluate", "train", "predict_map",
            "make_sample_data", "cut_examples", "validate_map")
PLAIN = ("make_sample_data", "cut_examples")  # argparse commands: --help lists every flag


@functools.lru_cache(maxsize=None)
def accepted(command):
    """The flags ``python -m pipelines.<command> --help_beam`` lists."""
    out = subprocess.run([sys.executable, "-m", f"pipelines.{command}", "--help_beam"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    if command in PLAIN:
        out = subprocess.run([sys.executable, "-m", f"pipelines.{command}", "--help"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    return set(re.findall(r"--[a-z_0-9]+", out.stdout))


def command_examples(text):
    """``(command, [flags])`` of every ``python -m pipelines.<command>`` example
    in ``text``, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for match in re.finditer(r"python -m pipelines\.(\w+)([^\n`]*)", joined):
        yield match.group(1), re.findall(r"(?<![\w-])--[a-z_0-9]+", match.group(2))


def sources():
    yield "README.md", open(os.path.join(REPO, "README.md")).read()
    for name in COMMANDS:
        path = os.path.join(REPO, "pipelines", f"{name}.py")
        yield f"pipelines/{name}.py", open(path).read()


def test_the_examples_are_found():
    found = [c for _, text in sources() for c, _ in command_examples(text)]
    assert set(COMMANDS) - set(PLAIN) <= set(found)


@pytest.mark.parametrize("source,text", list(sources()), ids=[s for s, _ in sources()])
def test_every_flag_of_every_example_is_accepted(source, text):
    unknown = [(command, flag) for command, flags in command_examples(text)
               if command in COMMANDS for flag in flags if flag not in accepted(command)]
    assert not unknown, f"{source}: flags the commands do not define: {unknown}"

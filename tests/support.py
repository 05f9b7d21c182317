"""Helpers the test modules share (plain functions, no fixtures)."""

import json
import os


def read_truth(paths):
    """The generator's ground truth: one dict per example."""
    with open(paths.ground_truth) as f:
        return [json.loads(line) for line in f]


def read_failures(out):
    """The merge's failures.jsonl in ``out``."""
    with open(os.path.join(out, "failures.jsonl")) as f:
        return [json.loads(line) for line in f]


def export_model(folder, seed: int, frozen: bool) -> str:
    """A reference model of its own for a test (SavedModel dir, frozen_graph.pb inside
    with ``frozen``)."""
    from model_runner import export_reference_model

    out = os.path.join(str(folder), "reference")
    export_reference_model.export(out, seed=seed, frozen=frozen)
    return out

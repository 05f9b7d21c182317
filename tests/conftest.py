"""Shared fixtures: small generated samples, made once per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("default", max_examples=300)
settings.register_profile("mutation", max_examples=60)  # make mutate: many runs, each shorter
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

import support  # noqa: E402
from transforms import synthetic  # noqa: E402


def _make(tmp_path_factory, name, **kwargs):
    out = tmp_path_factory.mktemp(name)
    cfg = synthetic.SampleConfig(output_dir=str(out), **kwargs)
    return synthetic.generate(cfg, log=lambda *_: None)


@pytest.fixture(scope="session")
def sample_ceop_zip(tmp_path_factory):
    return _make(tmp_path_factory, "ceop_zip", num_shards=3, examples_per_shard=12,
                 image_size=16, seed=1, ismn_format="ceop", ismn_layout="zip", ismn_days=60)


@pytest.fixture(scope="session")
def sample_hv_dir(tmp_path_factory):
    return _make(tmp_path_factory, "hv_dir", num_shards=2, examples_per_shard=10,
                 image_size=16, seed=2, ismn_format="header_values", ismn_layout="dir",
                 ismn_days=60)


@pytest.fixture(scope="session")
def reference_model(tmp_path_factory):
    """The reference model, as a SavedModel dir (with frozen_graph.pb inside)."""
    return support.export_model(tmp_path_factory.mktemp("models"), seed=0, frozen=True)


@pytest.fixture(scope="session")
def sample_512(tmp_path_factory):
    """A few examples at the released 512x512 size."""
    return _make(tmp_path_factory, "s512", num_shards=2, examples_per_shard=3,
                 image_size=512, seed=3, ismn_days=20)

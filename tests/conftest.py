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


@pytest.fixture(scope="session")
def project_wheel(tmp_path_factory):
    """The project's wheel, built once a session from ``setup.py`` and a copy
    of the tracked (and untracked, not ignored) files: a ``build/`` folder
    left in the checkout by an earlier build would otherwise be packed as
    it is."""
    import shutil
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root,
                            capture_output=True, text=True, check=True).stdout.split()
    for rel in listed:
        if os.path.isfile(os.path.join(root, rel)):
            os.makedirs(os.path.dirname(source / rel), exist_ok=True)
            shutil.copy2(os.path.join(root, rel), source / rel)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "-w", str(out / "dist"), str(source)],
                   check=True, cwd=str(out))
    (wheel,) = (out / "dist").glob("*.whl")
    return wheel


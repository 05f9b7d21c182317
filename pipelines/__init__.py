"""Pipeline entry points: ``python -m pipelines.<name>``."""

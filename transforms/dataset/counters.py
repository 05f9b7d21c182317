"""One flow's Beam counters, its namespace given once."""

from __future__ import annotations

from types import SimpleNamespace

from apache_beam.metrics import Metrics


class FlowCounters:
    """The Beam counters of one flow: ``COUNTERS = FlowCounters("run_inference")``,
    then ``COUNTERS("examples_read").inc()`` anywhere in the flow.

    Args:
        namespace: the flow's metrics namespace (its command's name).
    """

    def __init__(self, namespace: str):
        self.namespace = namespace

    def __call__(self, name: str):
        """The counter ``name`` of this flow."""
        return Metrics.counter(self.namespace, name)

    def named(self, **names: str) -> SimpleNamespace:
        """Several counters at once: ``named(read="examples_read")`` -> ``.read``."""
        return SimpleNamespace(**{attr: self(name) for attr, name in names.items()})

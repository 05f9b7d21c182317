"""Reusable functions, DoFns and PTransforms over the soil-moisture dataset."""

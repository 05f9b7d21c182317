"""Model loading, batching, inference and model export."""

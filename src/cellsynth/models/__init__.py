"""Shipped model directories (config.json + weights.safetensors), found with importlib.resources."""

"""cellsynth: fully-annotated synthetic microscopy data for segmentation without manual annotation."""
__version__ = "0.1.0"

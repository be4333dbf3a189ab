"""skillbank: an agent skill bank for the NVIDIA TAO action-recognition model."""

__version__ = "0.1.0"

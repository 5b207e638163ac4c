"""lossparity: differential conformance testing of deep-learning loss functions."""

__version__ = "0.1.0"

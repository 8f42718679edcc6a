"""ragline: documentation in, cited answers out."""

__version__ = "0.1.0"

"""lnexp: see and measure how normalization layers behave."""

__version__ = "0.1.0"

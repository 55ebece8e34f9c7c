"""aggregator: a geopolitical news aggregator and classifier."""

__version__ = "0.1.0"

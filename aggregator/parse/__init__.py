"""Parsing and normalization: bytes from a feed in, normalized entries out (no I/O)."""

"""Rainer: versioned, audited configuration commits, wire-compatible with the original."""

__version__ = "0.1.0"

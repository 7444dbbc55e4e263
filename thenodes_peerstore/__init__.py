"""Persistent, per-realm known-peer store for TheNodes-style P2P nodes."""

"""The project's own files, found from here wherever a test stands below ``tests/``."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The project's root: pyproject.toml, README.md, docs/, examples/."""
EXAMPLES = ROOT / "examples"

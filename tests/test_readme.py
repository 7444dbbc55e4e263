"""The README's library example runs as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()


def test_the_library_example_runs_and_writes_the_realm_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (code,) = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    document = tomllib.loads((tmp_path / "data/plugins/peerstore/example.toml").read_text())
    assert document["realm"] == "example"
    assert {p["addr"] for p in document["peers"]} == {"203.0.113.10:7447", "192.0.2.7:7447"}

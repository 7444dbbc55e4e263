"""Meta-tests: every hook of the contract is specified, implemented, tested and documented."""

from __future__ import annotations

import ast
import inspect

import pytest

from hostsim import hookspecs
from hostsim.plugins import PluginManifest, spec_hook_names
from tests.support.paths import ROOT

HOOKS = sorted(spec_hook_names())
PLUGIN_TESTS = {
    node.name
    for node in ast.walk(ast.parse((ROOT / "tests" / "peerstore" / "test_plugin.py").read_text()))
    if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
}


def test_the_contract_has_the_eight_hooks_of_the_design() -> None:
    assert (
        sorted(
            [
                "on_startup",
                "on_bootstrap",
                "on_connect",
                "on_disconnect",
                "on_peer_list",
                "on_dial_failed",
                "on_tick",
                "on_shutdown",
            ]
        )
        == HOOKS
    )


def test_the_plugin_implements_every_hook() -> None:
    manifest = PluginManifest.from_toml((ROOT / "plugin.toml").read_text(), source="plugin.toml")
    assert sorted(manifest.hooks) == HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_spec_documents_each_parameter(hook: str) -> None:
    spec = getattr(hookspecs, hook)
    doc = inspect.getdoc(spec) or ""
    assert doc, f"{hook} has no docstring"
    for name in inspect.signature(spec).parameters:
        assert f":param {name}:" in doc, f"{hook}: parameter {name} is not described"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_plugin_test(hook: str) -> None:
    assert any(name.startswith(f"test_{hook}_") for name in PLUGIN_TESTS), (
        f"tests/peerstore/test_plugin.py has no test_{hook}_... test"
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_described_in_the_docs(hook: str) -> None:
    hooks_page = (ROOT / "docs" / "hooks.md").read_text()
    rows = [line for line in hooks_page.splitlines() if line.startswith(f"| `{hook}")]
    assert rows, f"docs/hooks.md has no row for {hook} in its hooks table"

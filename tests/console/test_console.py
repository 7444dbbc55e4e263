"""``thenodes_console``: counted nouns, and shell completion made from each command's parser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hostsim import cli as hostsim_cli
from tests.support.paths import ROOT
from thenodes_console import completion, counted
from thenodes_peerstore import cli as peerstore_cli


@pytest.mark.parametrize(
    ("number", "noun", "said"),
    [
        (1, "connection", "1 connection"),
        (2, "connection", "2 connections"),
        (0, "peer", "0 peers"),
        (1, "address", "1 address"),
        (3, "address", "3 addresses"),
        (2, "fake address", "2 fake addresses"),
        (1, "entry", "1 entry"),
        (5, "entry", "5 entries"),
        (2, "day", "2 days"),
        (2, "match", "2 matches"),
    ],
)
def test_a_count_takes_the_singular_for_one_and_the_plural_otherwise(
    number: int, noun: str, said: str
) -> None:
    assert counted(number, noun) == said


def test_an_irregular_plural_is_named() -> None:
    assert counted(2, "child", "children") == "2 children"
    assert counted(1, "child", "children") == "1 child"


AD_HOC = re.compile(r"""['"](e?s|ies)['"] if |else ['"](e?s|ies)['"]""")
"""A plural ending picked by a conditional of its own: ``'s' if n != 1 else ''``."""


def test_no_message_picks_its_plural_by_hand() -> None:
    """Every count in a message goes through ``counted``: no conditional of its own."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in ("hostsim", "thenodes_peerstore", "thenodes_naming", "benchmarks")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if AD_HOC.search(line)
    ]
    assert not found, "\n".join(found)


# -- completion ----------------------------------------------------------------------------------

BASH = shutil.which("bash")


def complete(script: str, words: list[str]) -> list[str]:
    """What bash offers for the last of ``words`` with ``script`` sourced."""
    assert BASH is not None
    quoted = " ".join(f"'{w}'" for w in words)
    function = re.search(r"-F (\S+) ", script)
    assert function is not None
    program = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        f"{function.group(1)}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


needs_bash = pytest.mark.skipif(BASH is None, reason="needs bash")


@needs_bash
def test_hostsim_completes_its_commands_options_and_choices(tmp_path: Path) -> None:
    script = completion.script(hostsim_cli._parser(), "bash")
    assert complete(script, ["hostsim", "cl"]) == ["cluster"]
    assert complete(script, ["hostsim", "cluster", "--no"]) == ["--nodes"]
    assert complete(script, ["hostsim", "node", "--status", ""]) == ["text", "json"]
    assert complete(script, ["hostsim", "completion", ""]) == ["bash", "zsh"]
    assert complete(script, ["hostsim", "demo", "--nodes", ""]) == []  # a number


@needs_bash
def test_peerstore_completes_its_commands_and_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = completion.script(peerstore_cli._parser(), "bash")
    assert complete(script, ["peerstore", "as"]) == ["aside"]
    assert "--thenodes" in complete(script, ["peerstore", "import", "--"])
    assert complete(script, ["peerstore", "export", "--format", "t"]) == ["thenodes", "toml"]
    (tmp_path / "node.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert complete(script, ["peerstore", "list", "-c", "no"]) == ["node.toml"]


@needs_bash
@pytest.mark.parametrize("main", [hostsim_cli.main, peerstore_cli.main], ids=["hostsim", "peer"])
def test_the_completion_command_prints_a_script_bash_can_source(
    capsys: pytest.CaptureFixture[str], main: object
) -> None:
    assert main(["completion", "bash"]) == 0  # type: ignore[operator]
    script = capsys.readouterr().out
    assert BASH is not None
    subprocess.run([BASH, "--norc", "-n"], input=script, text=True, check=True, timeout=30)
    assert main(["completion", "zsh"]) == 0  # type: ignore[operator]
    assert capsys.readouterr().out.startswith("autoload -U +X bashcompinit && bashcompinit\n")

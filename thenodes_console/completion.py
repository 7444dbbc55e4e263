"""Shell completion for a command, written from its own ``argparse`` parser.

``hostsim completion bash`` and ``peerstore completion bash`` print a script for bash;
``zsh`` prints the same script behind zsh's ``bashcompinit``. The script completes the
subcommands, each subcommand's options, the choices of an option that has them, and file or
directory names where an option or argument takes one; it is made from the parser at the time
it is asked for, so it never lags behind the command.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

__all__ = ["SHELLS", "script"]

SHELLS = ("bash", "zsh")

_DIRECTORY = re.compile(r"DIR")
_FILE = re.compile(r"PATH|FILE|CONFIG|JSON|OUT|\.[a-z]+$")


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of ``parser``'s command for ``shell`` (one of :data:`SHELLS`)."""
    if shell not in SHELLS:
        raise ValueError(f"no completion for {shell!r}: choose from {', '.join(SHELLS)}")
    prog = parser.prog
    function = "_" + re.sub(r"\W", "_", prog) + "_complete"
    subcommands = _subcommands(parser)
    lines = [
        f"# {shell} completion for {prog}: {prog} completion {shell} > FILE, then source FILE",
        f"{function}() {{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" command="" i',
        '    [[ $COMP_CWORD -gt 0 ]] && prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case "${COMP_WORDS[i]}" in',
    ]
    if subcommands:
        lines.append(f'            {"|".join(subcommands)}) command="${{COMP_WORDS[i]}}"; break;;')
    lines += [
        "        esac",
        "    done",
        '    local words="" arguments=""',
        '    case "$command" in',
        f"        '') {_case_body(parser, list(subcommands))}",
    ]
    for name, sub in subcommands.items():
        lines.append(f"        {name}) {_case_body(sub, [])}")
    lines += [
        "    esac",
        "    if [[ $cur == -* || -z $command ]]; then",
        '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "    elif [[ -n $arguments ]]; then",
        '        COMPREPLY=($(compgen -W "$arguments" -- "$cur"))',
        "    else",
        '        COMPREPLY=($(compgen -f -- "$cur"))',
        "    fi",
        "}",
        f"complete -o filenames -F {function} {prog}",
    ]
    text = "\n".join(lines) + "\n"
    if shell == "zsh":
        text = "autoload -U +X bashcompinit && bashcompinit\n" + text
    return text


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _case_body(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """One ``case`` branch: what follows each option that takes a value, then the words."""
    words: list[str] = []
    values: list[str] = []
    arguments: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        words += action.option_strings
        if not action.option_strings and action.choices is not None:
            arguments += [str(choice) for choice in action.choices]
        if not action.option_strings or action.nargs == 0:
            continue
        values.append(f"{'|'.join(action.option_strings)}) {_values(action)} return;;")
    body = ""
    if values:
        body = 'case "$prev" in ' + " ".join(values) + " esac; "
    if arguments:
        body += f'arguments="{" ".join(arguments)}"; '
    return body + f'words="{" ".join([*words, *extra])}";;'


def _values(action: argparse.Action) -> str:
    """The completions of an option's value."""
    if action.choices is not None:
        choices = " ".join(str(c) for c in action.choices)
        return f'COMPREPLY=($(compgen -W "{choices}" -- "$cur"));'
    metavar = str(action.metavar or "")
    if _DIRECTORY.search(metavar):
        return 'COMPREPLY=($(compgen -d -- "$cur"));'
    if action.type is Path or _FILE.search(metavar):
        return 'COMPREPLY=($(compgen -f -- "$cur"));'
    return "COMPREPLY=();"  # a number, a name: nothing to offer

"""``python -m hostsim``: the ``hostsim`` command."""

from thenodes_console.entry import hostsim

raise SystemExit(hostsim())

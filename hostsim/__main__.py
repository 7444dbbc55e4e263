"""``python -m hostsim``: the ``hostsim`` command."""

from hostsim.cli import main

raise SystemExit(main())

"""``python -m thenodes_peerstore``: the ``peerstore`` command."""

from thenodes_peerstore.cli import main

raise SystemExit(main())

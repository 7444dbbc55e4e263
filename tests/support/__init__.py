"""What the tests share: each tool is written here once and imported where it is used.

- ``clocks``: a clock a test moves by hand.
- ``books``: a store opened on a file as a node opens it, and what its file holds.
- ``hosts``: a plugin host's config, and where the plugin keeps its file.
- ``command``: the ``peerstore`` command run in this process, and a node's config for it.
- ``keys``: a key file for an encrypted peer file, and the settings that name it.
- ``processes``: a Python child process that says "ready" before a test goes on, and
  ``hostsim node`` processes with their output where a test wants it.
- ``embedded``: IPv4 addresses spelt as IPv6 (NAT64, 6to4, Teredo, mapped), from their RFCs.
- ``line_peer``: a TheNodes peer on a blocking socket from any loopback address, and a flood
  of half-open connections, for tests that drive a ``hostsim node`` process.
"""

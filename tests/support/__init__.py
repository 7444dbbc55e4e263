"""What the tests share: each tool is written here once and imported where it is used.

- ``clocks``: clocks a test moves by hand.
- ``books``: opening a store on a file, and looking at the file it keeps.
- ``processes``: a Python child process that says "ready" before a test goes on.
- ``command``: the ``peerstore`` command run in this process, and a node's files for it.
- ``aio``: running a coroutine with a bound on its time.
"""

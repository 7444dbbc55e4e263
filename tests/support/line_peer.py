"""A TheNodes peer on a blocking socket, for tests that drive a ``hostsim node`` process from
threads or plain code: it connects from any address of 127.0.0.0/8, reads lines, does the
handshake and asks for peers; every wait is bounded by the socket's timeout."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from tests.support.thenodes_wire_peer import TIMEOUT, hello_line, peer_request_line


class LinePeer:
    """One TCP connection to a node on 127.0.0.1:``port``, from ``source``."""

    def __init__(self, port: int, *, source: str = "127.0.0.1", timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout, (source, 0))
        self.sock.settimeout(timeout)
        self.buffer = bytearray()

    def __enter__(self) -> LinePeer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def line(self) -> bytes:
        """The next line the node sent (newline cut).

        :raises ConnectionError: the node closed the connection first.
        """
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed by the node")
            self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer[:] = rest
        return line

    def handshake(self, node_id: str, listen_addr: str | None = None) -> bytes:
        """Read the node's HELLO and reply with ours; return the node's HELLO."""
        theirs = self.line()
        self.sock.sendall(hello_line(node_id, listen_addr, node_type=None))
        return theirs

    def answer(self, want: int = 16) -> bytes:
        """Ask for ``want`` peers; the PEER_LIST line that answers."""
        self.sock.sendall(peer_request_line(want))
        while b'"PEER_LIST"' not in (line := self.line())[:200]:
            pass
        return line

    def closed_by_node(self, timeout: float) -> bool:
        """Whether the node closes the connection within ``timeout`` seconds (what it sends
        meanwhile is read and dropped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self.sock.recv(1 << 16):
                    return True
            except TimeoutError:
                return False
            except OSError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


class HalfOpenFlood:
    """``count`` connections from ``source`` that never send a HELLO, each reopened as soon
    as the node closes it, by a thread of its own until the flood is left."""

    def __init__(self, port: int, count: int, *, source: str = "127.0.0.1") -> None:
        self.port, self.count, self.source = port, count, source
        self.opened = 0
        """Connections opened, the first ``count`` included."""
        self.greeted = 0
        """Connections the node sent its HELLO on (it took them in, for a while)."""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="half-open", daemon=True)

    def __enter__(self) -> HalfOpenFlood:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(TIMEOUT)

    def wait_greeted(self, count: int, timeout: float = TIMEOUT) -> None:
        """Wait until the node has taken in ``count`` of the flood's connections."""
        deadline = time.monotonic() + timeout
        while self.greeted < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.greeted} of {count} half-open connections taken in")
            time.sleep(0.01)

    def _open(self) -> socket.socket | None:
        with contextlib.suppress(OSError):
            sock = socket.create_connection(("127.0.0.1", self.port), 1.0, (self.source, 0))
            sock.setblocking(False)
            self.opened += 1
            return sock
        return None

    def _run(self) -> None:
        socks: dict[socket.socket, bool] = {}  # each socket: whether the node greeted it
        try:
            while not self._done.is_set():
                while len(socks) < self.count and not self._done.is_set():
                    if (sock := self._open()) is not None:
                        socks[sock] = False
                for sock in list(socks):
                    try:
                        data = sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data and not socks[sock]:
                        socks[sock] = True
                        self.greeted += 1
                    if not data:  # closed by the node: open another at once
                        sock.close()
                        del socks[sock]
                time.sleep(0.001)
        finally:
            for sock in socks:
                sock.close()

"""Two live nodes over TLS on loopback: both ends, with and without mTLS, the certificate's
fingerprint reaching the plugins; a failed handshake or a refused certificate is an incident
while the node serves everyone else; plaintext against TLS fails cleanly on both sides."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path
from typing import Any

import pytest

from hostsim.live.certs import spki_fingerprint
from hostsim.live.tls import TlsEndpoint
from hostsim.live.tlsconfig import TlsSettings
from hostsim.testing import RecordingPlugin
from tests.support.thenodes_wire_peer import close, config, hello_line, run, running, until
from tests.support.tls import certificate, encryption

FAST = {"network": {"connection_policy": {"direct_tcp_timeout_ms": 500}}}


def tls_config(tmp_path: Path, node_id: str, seeds: tuple[str, ...] = (), **options: Any) -> Any:
    extra = {**encryption(tmp_path / node_id / "pki", **options), **FAST}
    return config(tmp_path, node_id, seeds=seeds, extra=extra)


def fingerprint(tmp_path: Path, node_id: str) -> str:
    return spki_fingerprint(certificate(tmp_path / node_id / "pki" / "cert.pem"))


@pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
def test_two_nodes_connect_over_tls_each_seeing_what_the_other_proved(
    tmp_path: Path, mtls: bool
) -> None:
    listener, dialler = RecordingPlugin(), RecordingPlugin()

    async def scenario() -> None:
        async with running(tls_config(tmp_path, "tls-a", mtls=mtls), listener) as a:
            seeds = (f"127.0.0.1:{a.config.port}",)
            async with running(tls_config(tmp_path, "tls-b", seeds, mtls=mtls), dialler) as b:
                await until(lambda: bool(dialler.hooks("on_peer_list")))
                assert a.incidents.counts == b.incidents.counts == {}

    run(scenario())
    (outbound,) = [c.kwargs["peer"] for c in dialler.hooks("on_connect")]
    (inbound,) = [c.kwargs["peer"] for c in listener.hooks("on_connect")]
    assert (outbound.node_id, outbound.direction) == ("tls-a", "outbound")
    assert outbound.cert_fingerprint == fingerprint(tmp_path, "tls-a")
    assert (inbound.node_id, inbound.direction) == ("tls-b", "inbound")
    # A listener asks a dialler for a certificate only with mTLS.
    assert inbound.cert_fingerprint == (fingerprint(tmp_path, "tls-b") if mtls else None)


def test_a_failed_handshake_and_a_refused_certificate_are_incidents_while_others_are_served(
    tmp_path: Path,
) -> None:
    trusted = tmp_path / "trusted"
    recorder = RecordingPlugin()

    async def scenario() -> None:
        # The good peer's certificate is trusted; the stranger's is not.
        good_config = tls_config(tmp_path, "good", mtls=True)
        async with running(good_config):
            pass  # its certificate is made at its first start
        trusted.mkdir()
        (trusted / "good.pem").write_bytes((tmp_path / "good/pki/cert.pem").read_bytes())
        strict = tls_config(
            tmp_path, "strict", mtls=True, trusted=trusted, trust={"mode": "allowlist"}
        )
        async with running(strict, recorder) as node:
            port = node.config.port
            # A plaintext TheNodes dialler: it waits for a HELLO that never comes, and its
            # own HELLO is not a TLS record.
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(hello_line("plain", "127.0.0.1:7999"))
            await writer.drain()
            await until(lambda: node.incidents.counts["tls_handshake"] == 1)
            stranger = tls_config(tmp_path, "stranger", (f"127.0.0.1:{port}",), mtls=True)
            async with running(stranger):
                await until(lambda: node.incidents.counts["tls_untrusted"] >= 1)
            good = tls_config(tmp_path, "good", (f"127.0.0.1:{port}",), mtls=True)
            async with running(good):
                await until(lambda: bool(recorder.hooks("on_connect")))
            await close(writer)

    run(scenario())
    connected = [c.kwargs["peer"].node_id for c in recorder.hooks("on_connect")]
    assert connected == ["good"]


def test_plaintext_and_tls_nodes_fail_cleanly_whoever_dials(tmp_path: Path) -> None:
    plain_seen, tls_seen = RecordingPlugin(), RecordingPlugin()

    async def scenario() -> None:
        plain = config(tmp_path, "plain", extra=FAST)
        async with running(tls_config(tmp_path, "secure"), tls_seen) as secure:
            seeds = (f"127.0.0.1:{secure.config.port}",)
            async with running(config(tmp_path, "p2", seeds=seeds, extra=FAST), plain_seen):
                # The plaintext dialler waits for a HELLO, the TLS listener for a ClientHello.
                # Whichever gives up first: a timeout, or the other side closing.
                await until(lambda: bool(plain_seen.hooks("on_dial_failed")))
                await until(lambda: secure.incidents.counts["tls_handshake"] >= 1)
        async with running(plain, plain_seen) as listener:
            seeds = (f"127.0.0.1:{listener.config.port}",)
            async with running(tls_config(tmp_path, "s2", seeds), tls_seen) as dialler:
                # The plaintext listener's HELLO is not a TLS record.
                await until(lambda: dialler.incidents.counts["tls_handshake"] >= 1)
                await until(lambda: bool(tls_seen.hooks("on_dial_failed")))

    run(scenario())
    assert not plain_seen.hooks("on_connect")
    assert not tls_seen.hooks("on_connect")
    (plain_failure, *_) = [c.kwargs["error"] for c in plain_seen.hooks("on_dial_failed")]
    assert plain_failure.startswith("handshake failed: ")
    (failure, *_) = [c.kwargs["error"] for c in tls_seen.hooks("on_dial_failed")]
    assert failure.startswith("handshake failed: TLS: ")


def test_a_dialler_keeping_only_the_tls_streams_stays_connected_through_a_collection(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running(tls_config(tmp_path, "listener")) as node:
            settings = TlsSettings(tmp_path / "c.pem", tmp_path / "k.pem")
            client = TlsEndpoint.open(settings, node_id="c", realm="Example", ips=[])
            plain = await asyncio.open_connection("127.0.0.1", node.config.port)
            secured = await client.dial(*plain, 5.0)
            del plain  # only the TLS streams are kept
            gc.collect()
            hello = await asyncio.wait_for(secured.reader.readline(), 5.0)
            assert b'"HELLO"' in hello
            secured.writer.close()

    run(scenario())

"""The hook contract between a TheNodes-style host and its node-embedded (NEP) plugins.

The host owns these specifications. A plugin never imports this module: it makes its own
``pluggy.HookimplMarker("thenodes")`` and reads the arguments below by attribute, so the
protocols here document what a host passes rather than a type a plugin must import.

Every hook is called with keyword arguments. A plugin is installed under the ``thenodes``
entry point group; the entry point names a class, and the host registers one instance of it
per node, so a plugin keeps its per-node state on ``self``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import pluggy

PROJECT_NAME = "thenodes"
"""The pluggy project name, shared by the specs, the implementations and the entry point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


class RealmView(Protocol):
    """The realm a node belongs to."""

    @property
    def name(self) -> str:
        """The realm's display name, as configured."""

    @property
    def code(self) -> str:
        """The canonical realm code (lowercase ASCII), safe to use in file names."""

    @property
    def version(self) -> str:
        """The realm's protocol version."""


class HostView(Protocol):
    """A read-only view of the node that calls a hook."""

    @property
    def realm(self) -> RealmView:
        """The node's realm."""

    @property
    def node_id(self) -> str:
        """The node's own id."""

    @property
    def listen_addrs(self) -> Sequence[str]:
        """The node's own advertised ``"ip:port"`` addresses."""

    @property
    def state_dir(self) -> Path:
        """The directory where the node keeps its state."""

    @property
    def config(self) -> Mapping[str, Any]:
        """The whole parsed host config, as plain (read-only) TOML data."""

    @property
    def log(self) -> logging.Logger:
        """The node's logger."""

    def now(self) -> float:
        """The host clock, in seconds since the epoch (virtual in simulation)."""


class PeerView(Protocol):
    """A remote node on an established connection."""

    @property
    def node_id(self) -> str:
        """The id the peer gave in its HELLO."""

    @property
    def addr(self) -> str:
        """The observed remote socket address, ``"ip:port"``."""

    @property
    def listen_addr(self) -> str | None:
        """The address the peer advertised in its HELLO, or None."""

    @property
    def direction(self) -> Literal["outbound", "inbound"]:
        """``"outbound"`` when this node dialled the peer, ``"inbound"`` when it dialled in."""

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capabilities the peer announced."""

    @property
    def cert_fingerprint(self) -> str | None:
        """The SPKI SHA-256, hex lowercase, of the TLS certificate the peer proved it holds
        (the form of TheNodes' ``pin_fingerprints``), or None: the connection is plaintext, or
        the peer dialled in and this node asks no certificate of diallers (no mTLS).

        A host that predates it passes no such attribute: read it with
        ``getattr(peer, "cert_fingerprint", None)``. The HELLO's node id is not bound to the
        certificate (neither TheNodes 0.2.0 nor 0.4.0 binds them).
        """


@hookspec
def on_startup(host: HostView) -> list[str]:  # type: ignore[empty-body]
    """Start the plugin for a node, once, after plugins load and before any dial.

    Return the addresses the plugin wants dialled first, best first. The host dials the
    lists of every plugin, in registration order and without repeats, before its seeds.
    A plugin that raises here stops the node's startup with that error.

    :param host: The node that starts.
    :return: ``"ip:port"`` addresses to dial before the bootstrap seeds.
    """


@hookspec
def on_bootstrap(host: HostView, seeds: list[str]) -> None:
    """The node has its bootstrap addresses.

    Called once per startup, after :func:`on_startup`.

    :param host: The node.
    :param seeds: The configured bootstrap addresses, IP literals only (``"ip:port"``).
    """


@hookspec
def on_connect(host: HostView, peer: PeerView) -> None:
    """A handshake with a peer completed.

    :param host: The node.
    :param peer: The connected peer.
    """


@hookspec
def on_disconnect(host: HostView, peer: PeerView, reason: str) -> None:
    """A connection to a peer ended.

    :param host: The node.
    :param peer: The peer whose connection ended, as it was at :func:`on_connect`.
    :param reason: Why the connection ended, for people (``"closed by peer"``, ``"timeout"``...).
    """


@hookspec
def on_peer_list(host: HostView, sender: PeerView, peers: list[str]) -> None:
    """A PEER_LIST message arrived from a connected peer.

    The list is untrusted input: it may hold anything a remote node chose to send.

    :param host: The node.
    :param sender: The connected peer that sent the list.
    :param peers: The addresses in the message, unvalidated; a host may drop what a peer
        hands beyond its budget first (hostsim's core does: see :mod:`hostsim.core`).
    """


@hookspec
def on_dial_failed(host: HostView, addr: str, error: str) -> None:
    """An outbound dial failed.

    :param host: The node.
    :param addr: The address that was dialled.
    :param error: Why the dial failed, for people (``"connection refused"``, ``"timeout"``...).
    """


@hookspec
def on_tick(host: HostView) -> None:
    """The host's periodic timer, about once a second of host time.

    :param host: The node.
    """


@hookspec
def on_shutdown(host: HostView) -> None:
    """The node is stopping gracefully; the last hook a plugin instance receives.

    A crash calls no hook at all.

    :param host: The node.
    """

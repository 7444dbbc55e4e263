"""Run one scripted session of ``peerstore`` commands under two interpreters and diff what they
print: how a change to the command is shown to leave every output byte-identical but those it
means to change.

    git worktree add /tmp/before <commit> && python3 -m venv /tmp/before/.venv
    /tmp/before/.venv/bin/pip install -e '/tmp/before[encryption]'
    .venv/bin/python scripts/compare_command_output.py /tmp/before/.venv/bin/python .venv/bin/python

Each session starts from the same files, in the same directory (so that paths print alike), with
the clock of every command standing at the same time. The files are made here, by this
interpreter's ``thenodes_peerstore``, once for both sessions. Every step prints its command,
exit status, standard output and standard error; the diff of the two transcripts is printed,
and the exit status is 1 when they differ.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from thenodes_peerstore.codec import encode
from thenodes_peerstore.model import PeerEntry, Source

NOW = 1_796_000_000
DAY = 86_400
RUNNER = (
    "import sys, time\n"
    "now = float(sys.argv[1])\n"
    "time.time = lambda: now\n"
    "from thenodes_peerstore.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)
OWN = "198.51.100.5:7447"

Step = tuple[str, ...] | Callable[[Path], None]


def node_config(state_dir: str, extra: str = "") -> str:
    return (
        'bootstrap_nodes = ["203.0.113.1:7447"]\n[realm]\nname = "Example"\n'
        f'[node]\nid = "node-a"\nstate_dir = "{state_dir}"\nlisten_addrs = ["{OWN}"]\n'
        "[network.persistence]\nenabled = true\nmax_entries = 8\nttl_secs = 86400\n" + extra
    )


def entry(addr: str, source: Source, seen: int, **fields: object) -> PeerEntry:
    connected = seen if source is Source.CONNECTED else None
    return PeerEntry(
        addr=addr,
        source=source,
        first_seen=seen - 100,
        last_seen=seen,
        last_connected=connected,
        **fields,  # type: ignore[arg-type]
    )


def dirty_file() -> bytes:
    """A file as an earlier command left it: entries the node's next start drops among them."""
    return encode(
        "example",
        NOW - 3600,
        [
            entry("192.0.2.10:7447", Source.CONNECTED, NOW - 4000, node_id="node-c"),
            entry("198.51.100.7:7447", Source.CONNECTED, NOW - 5000, node_id="node-b"),
            entry(OWN, Source.CONNECTED, NOW - 4000, node_id="node-x"),
            entry("192.0.2.11:7447", Source.CONNECTED, NOW - 4000, node_id="node-a"),
            entry("203.0.113.1:7447", Source.BOOTSTRAP, NOW - 4000),
            entry("45.76.12.34:7447", Source.GOSSIP, NOW - 3 * DAY),
            entry("5.9.20.30:7447", Source.GOSSIP, NOW + 3 * DAY),
            entry("91.121.5.6:7447", Source.GOSSIP, NOW - 4000),
            entry("91.121.5.7:7447", Source.GOSSIP, NOW - 4100),
        ],
        version="1.0",
    )


def clean_file() -> bytes:
    return encode(
        "example",
        NOW - 60,
        [
            entry("192.0.2.10:7447", Source.CONNECTED, NOW - 120, node_id="node-c"),
            entry("203.0.113.1:7447", Source.BOOTSTRAP, NOW - 120),
            entry("45.76.12.34:7447", Source.GOSSIP, NOW - 120),
        ],
        version="1.0",
    )


def thenodes_json() -> str:
    records = [
        {"addr": OWN, "source": "Handshake", "failures": 0, "last_success_epoch": NOW - 50},
        {
            "addr": "192.0.2.20:7447",
            "source": "Handshake",
            "failures": 0,
            "last_success_epoch": NOW - 50,
            "node_id": "node-a",
        },
        {
            "addr": "192.0.2.21:7447",
            "source": "Handshake",
            "failures": 0,
            "last_success_epoch": NOW + 500,
            "node_id": "node-f",
        },
        {"addr": "192.0.2.22:7447", "source": "Handshake", "failures": 0},
        {"addr": "192.0.2.23:7447", "source": "Bootstrap", "failures": 1},
        {"addr": "224.0.0.1:7447", "source": "Gossip", "failures": 0},
        {"addr": "192.0.2.24:7447", "source": "Friend", "failures": 0},
    ]
    return json.dumps(records, indent=2)


def setup(work: Path) -> None:
    state = work / "state"
    (state / "plugins" / "peerstore").mkdir(parents=True, mode=0o700)
    (work / "node.toml").write_text(node_config(str(state)))
    (state / "plugins" / "peerstore" / "example.toml").write_bytes(dirty_file())
    (work / "peers.json").write_text(thenodes_json())
    (work / "clean.toml").write_bytes(clean_file())
    (work / "other-realm.toml").write_bytes(encode("other", NOW - 60, []))
    (work / "newer.toml").write_bytes(b'schema = 9\nrealm = "example"\n')
    (work / "not-peers.toml").write_text("hello = 1\n")
    (work / "key1").write_bytes(bytes(range(200, 232)))
    (work / "key2").write_text("pw\n")
    (work / "key-long").write_text("a long enough passphrase\n")
    for key in ("key1", "key2", "key-long"):
        os.chmod(work / key, 0o600)
    # TheNodes' example config: its own store named by path, relative to the working directory.
    example = work / "data" / "example-app"
    example.mkdir(parents=True)
    (work / "example.toml").write_text(
        node_config("data/example-app", 'path = "data/example-app/peers.json"\n')
    )
    # A TheNodes data directory: peers.json where TheNodes keeps it, no peer file yet.
    tn = work / "tn-state"
    tn.mkdir()
    (tn / "peers.json").write_text(thenodes_json())
    (work / "tn.toml").write_text(node_config(str(tn)))
    # A node whose key is kept in its state directory.
    secret = work / "enc-state"
    secret.mkdir()
    (secret / "key").write_bytes(bytes(range(100, 132)))
    os.chmod(secret / "key", 0o600)
    (work / "enc.toml").write_text(
        node_config(str(secret), f'encryption = "aes-256-gcm"\nkey_file = "{secret / "key"}"\n')
    )


def damage(name: str) -> Callable[[Path], None]:
    def edit(work: Path) -> None:
        path = work / name
        path.write_bytes(path.read_bytes().replace(b"203.0.113.1:7447", b"203.0.113.1:0", 1))

    return edit


def break_realm(name: str) -> Callable[[Path], None]:
    def edit(work: Path) -> None:
        path = work / name
        path.write_bytes(path.read_bytes().replace(b'realm = "example"', b"realm = example", 1))

    return edit


C = ("-c", "node.toml")
F = ("--file", "clean.toml")
SUBCOMMANDS = (
    "list",
    "show",
    "stats",
    "verify",
    "add",
    "remove",
    "prune",
    "seal",
    "import",
    "export",
    "rekey",
    "decrypt",
)
STEPS: tuple[Step, ...] = (
    ("--help",),
    *((name, "--help") for name in SUBCOMMANDS),
    ("list", *C),
    ("list", "--json", *C),
    ("list", "--source", "Connected", "--source", "gossip", *C),
    ("show", "192.0.2.10:7447", *C),
    ("show", "192.0.2.99:7447", *C),
    ("stats", *C),
    ("stats", "--json", *C),
    ("verify", *C),
    ("export", "--format", "thenodes", *C),
    ("export", "--format", "json", *C),
    ("export", "--format", "toml", *C),
    ("prune", "--dry-run", *C),
    ("seal", "--dry-run", *C),
    ("add", "192.0.2.10:7447", *C),
    ("add", OWN, *C),
    ("add", "192.0.2.50:7447", "--node-id", "node-a", *C),
    ("add", "0.0.0.0:7447", *C),
    ("remove", "192.0.2.99:7447", *C),
    ("list", *C),
    ("add", "192.0.2.50:7447", "--source", "Connected", "--node-id", "node-z", *C),
    ("list", *C),
    ("remove", "192.0.2.50:7447", "192.0.2.99:7447", *C),
    ("import", "--thenodes", "peers.json", *C),
    ("list", *C),
    ("stats", *C),
    ("prune", *C),
    ("seal", *C),
    ("list", *F),
    ("stats", *F),
    ("verify", *F),
    ("list", *F, "--realm", "other"),
    ("list", *F, "--realm-version", "2.0"),
    ("add", "192.0.2.60:7447", *F),
    ("add", "192.0.2.61:7447", "--file", "new.toml"),
    ("add", "192.0.2.61:7447", "--file", "new.toml", "--realm", "example"),
    ("import", "--thenodes", "peers.json", "--file", "new2.toml", "--realm", "example"),
    ("list", "--file", "new2.toml"),
    damage("clean.toml"),
    ("verify", *F),
    ("list", *F),
    ("remove", "45.76.12.34:7447", *F),
    ("prune", *F),
    ("seal", "--dry-run", *F),
    ("seal", *F),
    ("verify", *F),
    break_realm("clean.toml"),
    ("list", *F),
    ("stats", *F),
    ("stats", "--json", *F),
    ("verify", *F),
    ("export", "--format", "json", *F),
    ("export", "--format", "toml", *F),
    ("remove", "45.76.12.34:7447", *F),
    ("seal", *F),
    ("seal", *F, "--realm", "example"),
    ("list", "--file", "missing.toml"),
    ("remove", "192.0.2.1:7447", "--file", "missing.toml"),
    ("verify", "--file", "other-realm.toml"),
    ("verify", "--file", "other-realm.toml", "--realm", "example"),
    ("verify", "--file", "newer.toml"),
    ("seal", "--file", "newer.toml"),
    ("list", "--file", "not-peers.toml"),
    ("seal", "--file", "not-peers.toml", "--realm", "example"),
    ("rekey", "--new-key-file", "key1", "--file", "new.toml"),
    ("list", "--file", "new.toml"),
    ("list", "--file", "new.toml", "--key-file", "key-long"),
    ("verify", "--file", "new.toml", "--key-file", "key1"),
    ("decrypt", "--file", "new.toml", "--key-file", "key1"),
    ("decrypt", "--file", "clean.toml", "--key-file", "key1"),
    ("export", "--format", "json", "--file", "new.toml", "--key-file", "key1"),
    ("export", "--format", "json", "--plaintext", "--file", "new.toml", "--key-file", "key1"),
    ("add", "192.0.2.62:7447", "--file", "new.toml", "--key-file", "key1"),
    ("rekey", "--new-key-file", "key2", "--file", "new.toml", "--key-file", "key1"),
    ("list", "--file", "new.toml", "--key-file", "key2"),
    ("rekey", "--new-key-file", "key-long", "--file", "new.toml", "--key-file", "key2"),
    ("verify", "--file", "new.toml", "--key-file", "key-long"),
    ("list", "-c", "example.toml"),
    ("add", "192.0.2.70:7447", "-c", "example.toml"),
    ("list", "-c", "example.toml"),
    ("list", "-c", "tn.toml"),
    ("verify", "-c", "tn.toml"),
    ("list", "-c", "enc.toml"),
    ("add", "192.0.2.80:7447", "-c", "enc.toml"),
    ("rekey", "--new-key-file", "enc-state/key2", "-c", "enc.toml"),
)


def session(python: str, work: Path) -> str:
    """The transcript of every step, run by ``python`` in ``work``."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    setup(work)
    shutil.copy(work / "key1", work / "enc-state" / "key2")
    lines: list[str] = []
    for step in STEPS:
        if callable(step):
            step(work)
            lines.append(f"(edit: {step.__qualname__})")
            continue
        ran = subprocess.run(  # noqa: S603 - the interpreters named on the command line
            [python, "-c", RUNNER, str(NOW), *step],
            cwd=work,
            capture_output=True,
            timeout=120,
            check=False,
        )
        lines.append(f"$ peerstore {' '.join(step)}  (exit {ran.returncode})")
        lines += [f"  out| {line}" for line in ran.stdout.decode(errors="replace").splitlines()]
        lines += [f"  err| {line}" for line in ran.stderr.decode(errors="replace").splitlines()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the interpreter of the version to compare with")
    parser.add_argument("after", help="the interpreter of the version compared")
    parser.add_argument("--keep", type=Path, help="write both transcripts into this directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        work = Path(root) / "node-a"
        before = session(os.path.abspath(args.before), work)
        after = session(os.path.abspath(args.after), work)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        (args.keep / "before.txt").write_text(before)
        (args.keep / "after.txt").write_text(after)
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after"))
    sys.stdout.write(("\n".join(diff) if diff else "identical") + "\n")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())

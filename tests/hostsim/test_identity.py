"""A node's id as TheNodes keeps it: configured, kept in the id file, or made and kept there."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostsim.errors import NodeIdentityError
from hostsim.identity import resolve_node_id


def resolve(state_dir: Path, *, node_id: str | None = None, allow_ephemeral: bool = True) -> str:
    return resolve_node_id(node_id, state_dir, "node_id", allow_ephemeral=allow_ephemeral)


def test_a_configured_id_wins_and_touches_no_file(tmp_path: Path) -> None:
    assert resolve(tmp_path / "state", node_id="node-a") == "node-a"
    assert not (tmp_path / "state").exists()


def test_without_an_id_a_uuid_is_made_kept_and_read_back(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = resolve(state)

    assert str(uuid.UUID(first)) == first
    assert (state / "node_id").read_text(encoding="utf-8") == first + "\n"
    assert resolve(state) == first
    assert [p.name for p in state.iterdir()] == ["node_id"]  # no temporary file left


def test_an_id_file_written_by_hand_is_read_trimmed(tmp_path: Path) -> None:
    (tmp_path / "node_id").write_text("  my-node.1 \n", encoding="utf-8")
    assert resolve(tmp_path) == "my-node.1"


def test_the_id_file_may_be_named_and_sit_in_a_subdirectory(tmp_path: Path) -> None:
    made = resolve_node_id(None, tmp_path, "ids/me", allow_ephemeral=False)
    assert (tmp_path / "ids" / "me").read_text(encoding="utf-8").strip() == made


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", 'holds "", not a node id'),
        (b"bad id\n", 'holds "bad id", not a node id: must be 1 to 128'),
        (b"x" * 129, "not a node id"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_an_id_file_without_a_valid_id_is_an_error_and_is_left_alone(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "node_id"
    path.write_bytes(content)
    with pytest.raises(NodeIdentityError, match=message) as info:
        resolve(tmp_path)
    assert str(info.value).startswith(f"{path}: ")
    assert path.read_bytes() == content


def test_an_unreadable_id_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "node_id").mkdir()
    with pytest.raises(NodeIdentityError, match=r"node_id: cannot read the node id"):
        resolve(tmp_path)


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory no file can be made in: 0500 for a user; for root, who may write into any
    mode, the kernel's /proc/self, which holds no file a process did not get from the kernel."""
    if os.geteuid() == 0:
        if not Path("/proc/self").is_dir():
            pytest.skip("root on a system without /proc may write anywhere")
        yield Path("/proc/self")
        return
    state = tmp_path / "ro"
    state.mkdir()
    state.chmod(0o500)
    try:
        yield state
    finally:
        state.chmod(0o700)


def test_an_id_that_cannot_be_kept_is_ephemeral_or_an_error(
    unwritable_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hostsim.identity"):
        ephemeral = resolve(unwritable_dir)
    assert str(uuid.UUID(ephemeral)) == ephemeral
    assert "for this run" in caplog.text
    with pytest.raises(NodeIdentityError, match="allow_ephemeral = false"):
        resolve(unwritable_dir, allow_ephemeral=False)


def test_an_id_that_cannot_be_kept_because_state_dir_is_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.write_text("not a directory", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="hostsim.identity"):
        ephemeral = resolve(state / "sub")
    assert str(uuid.UUID(ephemeral)) == ephemeral
    assert "cannot keep the node id" in caplog.text
    with pytest.raises(NodeIdentityError, match="allow_ephemeral = false"):
        resolve(state / "sub", allow_ephemeral=False)


def test_a_file_made_meanwhile_by_another_start_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_text("other-node\n", encoding="utf-8")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    assert resolve(tmp_path) == "other-node"
    assert [p.name for p in tmp_path.iterdir()] == ["node_id"]

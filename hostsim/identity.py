"""A node's id, kept as TheNodes keeps it (``NodeConfig::resolve_node_id`` in src/config.rs).

1. ``[node] id`` when the config sets it;
2. else the id in ``{state_dir}/{id_file}`` (``id_file`` defaults to ``node_id``);
3. else a new UUID, written there atomically, so the node keeps it across restarts;
4. else, when the file cannot be written and ``allow_ephemeral`` is true (the default), the new
   UUID for this run only, with a warning.

Where TheNodes replaces an id file that holds no valid id, hostsim stops with an error naming
the file: an identity is never overwritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import uuid
from pathlib import Path

from hostsim.convert import show
from hostsim.errors import NodeIdentityError
from thenodes_naming import node_id_problem

__all__ = ["id_file_path", "resolve_node_id"]

logger = logging.getLogger(__name__)


def id_file_path(state_dir: Path, id_file: str) -> Path:
    """Where a node without ``[node] id`` keeps its id (TheNodes joins the two the same way)."""
    return state_dir / id_file


def resolve_node_id(
    node_id: str | None, state_dir: Path, id_file: str, *, allow_ephemeral: bool
) -> str:
    """The node's id: ``node_id`` if set, else the one kept in its id file, else a new one.

    :raises NodeIdentityError: the id file holds no valid id or cannot be read, or a new id
        cannot be written there and ``allow_ephemeral`` is false.
    """
    if node_id is not None:
        return node_id
    path = id_file_path(state_dir, id_file)
    kept = _read(path)
    if kept is not None:
        return kept
    new_id = str(uuid.uuid4())
    try:
        stored = _create(path, new_id)
    except OSError as exc:
        if not allow_ephemeral:
            raise NodeIdentityError(
                f"{path}: cannot keep the node id there ({exc}) and [node] allow_ephemeral = false"
            ) from None
        logger.warning(
            "%s: cannot keep the node id there (%s); using %s for this run", path, exc, new_id
        )
        return new_id
    if stored == new_id:
        logger.info("%s: new node id %s", path, new_id)
    return stored


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):  # no such file: make one
        return None
    except OSError as exc:
        raise NodeIdentityError(f"{path}: cannot read the node id: {exc}") from None
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise NodeIdentityError(f"{path}: the node id file is not UTF-8 text") from None
    if (problem := node_id_problem(text)) is not None:
        raise NodeIdentityError(
            f"{path}: holds {show(text)}, not a node id: {problem};"
            " put the node's id in it or remove it to have a new one made"
        )
    return text


def _create(path: Path, node_id: str) -> str:
    """Write ``node_id`` to ``path`` unless a file is there already; return the id kept there.

    The id is written to a temporary file, synced, then linked into place, so a crash leaves
    either no file or a whole one, and of two nodes starting at once one id wins for both.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(node_id + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        try:
            os.link(tmp, path)
        except FileExistsError:
            kept = _read(path)
            if kept is None:  # pragma: no cover - removed between link and read
                raise
            return kept
        _sync_dir(path.parent)
        return node_id
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

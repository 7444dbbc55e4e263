"""The documentation's walkthroughs and examples run as written, and its copies match the files.

Every fenced block of the README and of every page under docs/ is checked, and a test fails
for a block that is not (:data:`CHECKED_BY`), so that no page can go stale silently:

- a ``console`` block is run, command by command, in a scratch directory per page, and what
  each command prints must be what the block shows, times and pids aside
  (:func:`run_console_blocks`; a block that needs a node or files first has a setup in
  :data:`SETUPS`; the cluster's, whose figures vary from run to run, is compared with every
  number aside, in a slow test);
- every other block is named in :data:`CHECKED_BY` with the test that checks it.

Inline commands (```hostsim ...``` and ```peerstore ...``` in backticks) must parse.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import attrs
import pytest

from hostsim import cli as hostsim_cli
from hostsim.config import HostConfig
from hostsim.errors import HostsimError
from hostsim.experiment.eclipse import _COLUMNS as eclipse_columns
from hostsim.live.node import LiveNode
from hostsim.live.processes import NodeProcess
from hostsim.live.settings import live_settings
from hostsim.live.tlsconfig import tls_settings
from tests.support.books import open_book
from tests.support.paths import ROOT
from tests.support.processes import node_processes, ready_child
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore, codec
from thenodes_peerstore import cli as peerstore_cli
from thenodes_peerstore import plugin as plugin_module
from thenodes_peerstore import store as store_module
from thenodes_peerstore.model import PeerEntry, Source, network_group
from thenodes_peerstore.peerfile import key_of

DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
# Where the operating walkthrough is shown to run; the test's own directory stands in for it.
SHOWN_DIR = "/srv/node-a"
WAIT = 20.0  # seconds, at most, for any one status line of a live node


def fenced(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def steps(block: str) -> list[tuple[str, str]]:
    """``$ command`` lines of a console block, each with the output shown after it."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"output before any command: {line!r}"
            found[-1][1].append(line)
    return [(command, "\n".join(output)) for command, output in found]


def normalise(text: str, *, numbers: bool = False) -> list[str]:
    """What a run prints, times aside: the clock, pids and the column widths it pads to vary;
    with ``numbers``, every number too (measured figures)."""
    text = re.sub(r"\bpid \d+", "pid <pid>", text)
    if numbers:  # a figure, a time, "never" or "-" (nothing tried) are all figures here
        text = re.sub(r"\d+(\.\d+)?( s\b)?", "#", text)
        text = re.sub(r"(?<!\S)(-|never)(?!\S)", "#", text)
        text = text.replace("#/#", "#")  # a ratio, or "-" where nothing was tried
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<date>", text)
    text = re.sub(r"\b\d{10}\b", "<time>", text)
    text = re.sub(r"\b(now|\d+ (s|min|h|d) ago)\b", "<ago>", text)
    # The size of a file set aside follows what the run wrote in it (times, stops): shown, not
    # compared.
    text = re.sub(r"(<ago> +)\d+(?= )", r"\1<bytes>", text)
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    return _numbered_runs_sorted(lines)


def _numbered_runs_sorted(lines: list[str]) -> list[str]:
    """A numbered list (a reconnect plan) ranks by times the walkthrough makes within a second
    or two of each other, so with the times aside its order is too: each run of numbered lines
    is compared as a set."""
    out: list[str] = []
    run: list[str] = []
    for line in [*lines, ""]:
        numbered = re.match(r"\d+\. (.*)", line)
        if numbered:
            run.append(numbered.group(1))
            continue
        out.extend(f"#. {item}" for item in sorted(run))
        run = []
        out.append(line)
    return out[:-1]


def run_shown(command: str, cwd: Path, timeout: float = 60) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONUNBUFFERED="1")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    shown = done.stdout.rstrip("\n")
    if done.returncode:
        shown += f"\n(exit {done.returncode})"
    return shown.strip("\n")


# -- the example node config ----------------------------------------------------------------


def test_the_readme_shows_examples_node_toml_and_the_docs_include_it() -> None:
    node = (ROOT / "examples" / "node.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Enable it", 1)[1].split("\n## ", 1)[0]
    [shown] = fenced(section, "toml")
    body = node.split("\n\n", 1)[1]  # the file without its opening comment
    assert shown == body
    configuration = (DOCS / "configuration.md").read_text()
    assert '```toml\n--8<-- "examples/node.toml"\n```' in configuration


# -- operating a node -----------------------------------------------------------------------


Setup = Callable[[Path], AbstractContextManager[object]]


@contextlib.contextmanager
def a_node_holds_its_file(workdir: Path) -> Iterator[None]:
    """node.toml, and a process that holds its peer file as a running node does: four proven
    peers, seen 10 min, 1 h and 2 h ago."""
    (workdir / "node.toml").write_text(
        '[realm]\nname = "Example"\n[node]\nid = "node-a"\nstate_dir = "data"\n'
        "[network.persistence]\nenabled = true\n"
    )
    peers = workdir / "data" / "plugins" / "peerstore" / "example.toml"
    with ready_child(HOLDING_NODE, str(peers)):
        yield


HOLDING_NODE = """
import sys, time
from pathlib import Path
from thenodes_peerstore import PersistenceConfig, PersistentPeerStore
now = int(time.time())
t = [now - 7200]
with PersistentPeerStore.open(
    path=Path(sys.argv[1]), realm="example", clock=lambda: t[0],
    config=PersistenceConfig(enabled=True),
) as book:
    for addr, node_id, ago in (
        ("198.51.100.7:7447", "node-b", 7200),
        ("192.0.2.10:7447", "node-c", 7200),
        ("91.121.5.6:7447", "node-e", 3600),
        ("[2001:db8::10]:7447", "node-g", 600),
    ):
        t[0] = now - ago
        book.store.record_connected(addr, node_id=node_id)
        book.store.record_disconnected(addr)
    book.save()
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def a_config_with_a_bad_value(workdir: Path) -> Iterator[None]:
    """examples/restart.toml and examples/node.toml, with ``max_entries = -3`` added."""
    shutil.copy(ROOT / "examples" / "restart.toml", workdir / "restart.toml")
    node = (ROOT / "examples" / "node.toml").read_text()
    bad, found = re.subn(
        r"^\[network\.persistence\]\n", r"\g<0>max_entries = -3\n", node, flags=re.M
    )
    assert found == 1
    (workdir / "node.toml").write_text(bad)
    yield


@contextlib.contextmanager
def a_dial_met_another_certificate(workdir: Path) -> Iterator[None]:
    """tls.toml, and its node's file: two peers proven over TLS 10 min ago, and a dial of one
    a minute ago that met another certificate."""
    (workdir / "tls.toml").write_text(
        '[realm]\nname = "Example"\n[node]\nid = "node-a"\nstate_dir = "tls-data"\n'
        "[network.persistence]\nenabled = true\n"
    )
    peers = workdir / "tls-data" / "plugins" / "peerstore" / "example.toml"
    t = [int(time.time()) - 600]
    with PersistentPeerStore.open(
        path=peers, realm="example", clock=lambda: t[0], config=PersistenceConfig(enabled=True)
    ) as book:
        for addr, node_id, fingerprint in (
            (
                "203.0.113.10:7447",
                "node-b",
                "66fd9a7975c6a1eb2ea3c0c529f5b8e0781add952a7abea1ba29fe4a77f0b076",
            ),
            ("192.0.2.10:7447", "node-c", "3f1e7d2c9b8a6f5e" * 4),
        ):
            book.store.record_connected(addr, node_id=node_id, cert_fingerprint=fingerprint)
            book.store.record_disconnected(addr)
            t[0] += 60
        t[0] += 480
        new = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"
        book.store.record_connected("203.0.113.10:7447", cert_fingerprint=new)
        book.store.record_disconnected("203.0.113.10:7447")
    yield


SETUPS: dict[tuple[str, str], Setup] = {
    ("operating.md", "peerstore list --source Connected -c node.toml"): a_node_holds_its_file,
    ("operating.md", "peerstore list -c tls.toml"): a_dial_met_another_certificate,
    ("configuration.md", "hostsim run restart.toml --state-dir state"): a_config_with_a_bad_value,
}
"""What a console block needs before it runs: (page, its first command) -> a setup that makes
it in the page's directory, and ends when the block has run."""
SHAPE_ONLY = {"cluster.md"}
"""Pages whose console blocks show measured figures: compared with every number aside."""


def run_console_blocks(name: str, workdir: Path, timeout: float = 60) -> list[str]:
    """Run every console block of page ``name`` in ``workdir``, block by block, in order, and
    check what each command prints; return the commands run."""
    page = (ROOT / name if name == "README.md" else DOCS / name).read_text()
    ran = []
    for block in fenced(page, "console"):
        block_steps = steps(block)
        setup = SETUPS.get((name, block_steps[0][0]), lambda _: contextlib.nullcontext())
        with setup(workdir):
            for command, shown in block_steps:
                printed = run_shown(command, workdir, timeout).replace(str(workdir), SHOWN_DIR)
                numbers = name in SHAPE_ONLY
                if numbers:  # and the progress lines on stderr (a pipe), which the page omits
                    printed = re.sub(r"(?m)^cluster [^:\n]+, [^:\n]+: .*\n", "", printed)
                assert normalise(printed, numbers=numbers) == normalise(shown, numbers=numbers), (
                    f"{name}: $ {command}"
                )
                ran.append(command)
    return ran


def test_the_operating_walkthrough_runs_as_written_and_prints_what_it_shows(
    tmp_path: Path,
) -> None:
    walkthrough = run_console_blocks("operating.md", tmp_path)
    assert len(walkthrough) >= 15
    assert walkthrough[0].startswith("peerstore add "), "the first step makes the file"
    assert "peerstore remove 91.121.5.6:7447 -c node.toml" in walkthrough, "while a node runs"


CONSOLE_PAGES = sorted(
    page.name
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]
    if fenced(page.read_text(), "console")
    and page.name not in ("operating.md", "embedding.md", *SHAPE_ONLY)
)


@pytest.mark.parametrize("name", CONSOLE_PAGES)
def test_the_console_blocks_of_every_page_run_as_written(name: str, tmp_path: Path) -> None:
    assert run_console_blocks(name, tmp_path)


@pytest.mark.slow
def test_the_cluster_page_shows_what_hostsim_cluster_prints(tmp_path: Path) -> None:
    """The figures vary from run to run; the lines, the rows and the verdicts do not."""
    assert run_console_blocks("cluster.md", tmp_path, timeout=600) == ["hostsim cluster"]


# -- embedding ------------------------------------------------------------------------------


def test_the_embedding_example_runs_as_written_and_prints_what_the_page_shows(
    tmp_path: Path,
) -> None:
    page = (DOCS / "embedding.md").read_text()
    [(command, shown)] = [step for block in fenced(page, "console") for step in steps(block)]
    assert command == "python examples/embed.py"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == shown.strip()
    [peer_file] = [p for p in (tmp_path / "embed-state").rglob("*.toml")]
    document = tomllib.loads(peer_file.read_text())
    assert document["realm"] == "example"
    assert {p["addr"] for p in document["peers"]} == {
        "203.0.113.1:7447",
        "192.0.2.10:7447",
        "203.0.113.7:7447",
    }
    assert '--8<-- "examples/embed.py"' in page


# -- a live node ----------------------------------------------------------------------------


LIVE = {name: ROOT / "examples" / "live" / f"{name}.toml" for name in "abc"}


def load_live(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> dict[str, HostConfig]:
    with caplog.at_level(logging.WARNING, logger="hostsim"):
        configs = {
            name: HostConfig.from_file(path, base_dir=tmp_path) for name, path in LIVE.items()
        }
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    return configs


def test_the_three_live_configs_are_one_loopback_network_a_b_c(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configs = load_live(tmp_path, caplog)
    a, b, c = configs["a"], configs["b"], configs["c"]
    assert len({config.port for config in configs.values()}) == 3
    assert a.bootstrap_nodes == ()
    assert b.bootstrap_nodes == (f"127.0.0.1:{a.port}",)
    assert c.bootstrap_nodes == (f"127.0.0.1:{b.port}",)
    assert [config.node_id for config in (a, b, c)] == ["node-a", "node-b", "node-c"]
    assert len({config.realm for config in configs.values()}) == 1
    for name, config in configs.items():
        assert config.bind_addr == "127.0.0.1"
        assert config.listen_addrs == (f"127.0.0.1:{config.port}",)
        assert config.state_dir == tmp_path / f"live-{name}", "state under the working directory"
        assert config.enabled_plugins == ("peerstore",)
        assert config.data["network"]["persistence"]["enabled"] is True
    page = (DOCS / "live.md").read_text()
    for name, config in configs.items():
        assert f"hostsim node examples/live/{name}.toml" in page
        assert f"port {config.port}" in page
    assert "rm -rf live-c" in page
    # Loopback is one network group: a failed dial never counts there, as the page says.
    [group] = {network_group(f"127.0.0.1:{config.port}") for config in configs.values()}
    assert f"every node of this walkthrough is in one, `{group}`" in page
    # Their state directories, under the repository's root, are ignored, and named for removal.
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for name, config in configs.items():
        assert f"/{config.state_dir.name}/" in ignored, name
    assert "rm -rf live-a live-b live-c" in page


# -- the README and the site ----------------------------------------------------------------


def test_the_readme_is_short_and_links_every_docs_page_that_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    for target in re.findall(r"\]\((docs/[^)#]+)\)", readme):
        assert (ROOT / target).is_file(), target
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f": {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.slow
def test_the_live_walkthrough_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Steps 1 to 5 of docs/live.md, on the configs' own ports (skipped when one is taken)."""
    configs = load_live(tmp_path, caplog)
    taken = [config.port for config in configs.values() if not port_is_free(config.port)]
    if taken:
        pytest.skip(f"port(s) {taken} in use on 127.0.0.1")
    monkeypatch.chdir(tmp_path)  # state directories are under the working directory
    addr = {name: f"127.0.0.1:{config.port}" for name, config in configs.items()}
    with node_processes(tmp_path, WAIT) as start_node:

        def start(name: str) -> NodeProcess:
            return start_node(LIVE[name], name)

        start("a")
        b = start("b")
        b.wait_for(rf"dialling {addr['a']} \(seed\)", WAIT)
        c = start("c")
        c.wait_for(rf"connected to {addr['b']} \(node-b, outbound\)", WAIT)
        c.wait_for(rf"dialling {addr['a']} \(book\)", WAIT)
        c.wait_for(rf"connected to {addr['a']} \(node-a, outbound\)", WAIT)
        assert c.terminate() == 0  # Ctrl-C or SIGTERM: a graceful stop, the file is saved
        c = start("c")
        # Both are proven; longest standing first, and two proofs within the same second
        # rank by address, so either may come first.
        c.wait_for(r"2\. \S+ \(peerstore\)", WAIT)
        planned = [
            m[1] for _, line in c.lines if (m := re.search(r"\d\. (\S+) \(peerstore\)", line))
        ]
        assert sorted(planned) == sorted([addr["a"], addr["b"]])
        assert c.terminate() == 0
        assert b.terminate() == 0  # the seed goes away
        c = start("c")
        c.wait_for(rf"connected to {addr['a']} \(node-a, outbound\)", WAIT)
        assert c.terminate() == 0
        assert (tmp_path / "live-c").is_dir()


# -- the API reference ------------------------------------------------------------------------

PACKAGES = ("hostsim", "thenodes_peerstore", "thenodes_naming", "thenodes_console")


def test_every_api_name_a_page_tells_readers_to_use_is_in_the_api_reference() -> None:
    """A page that names ``hostsim.host.PluginHost`` (say) sends the reader to the API
    reference: the name must exist, and its module must be one the reference renders."""
    rendered = {
        name
        for page in (DOCS / "api").glob("*.md")
        for name in re.findall(r"^::: (\S+)$", page.read_text(), flags=re.MULTILINE)
    }
    pages = [ROOT / "README.md", *DOCS.glob("*.md")]
    named = {
        (page.name, match)
        for page in pages
        for match in re.findall(rf"`((?:{'|'.join(PACKAGES)})(?:\.\w+)+)", page.read_text())
    }
    assert len(named) >= 5
    for page, name in sorted(named):
        parts = name.split(".")
        found = None
        for cut in range(len(parts), 0, -1):
            try:
                found = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                found = getattr(found, attribute, None)
            module = ".".join(parts[:cut])
            break
        assert found is not None, f"{page}: `{name}` names nothing"
        assert module in rendered or any(module.startswith(r + ".") for r in rendered), (
            f"{page}: `{name}` is in module {module}, which no API page renders"
        )


# -- the project's own files ------------------------------------------------------------------


def test_security_and_contributing_are_linked_and_contributing_runs_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "[SECURITY.md](SECURITY.md)" in readme
    assert "[CONTRIBUTING.md](CONTRIBUTING.md)" in readme
    security = (ROOT / "SECURITY.md").read_text()
    for heading in ("## Reporting a vulnerability", "## What it defends against", "## What it"):
        assert heading in security
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    checks = contributing.split("## Before you send a change", 1)[1]
    [block] = fenced(checks, "sh")[:1]
    ci = (ROOT / ".ci" / "run").read_text()
    commands = block.strip().splitlines()
    assert len(commands) == 6
    for command in commands:
        assert command in ci, f"CONTRIBUTING.md asks for `{command}`, which CI does not run"
    for target in re.findall(r"\]\(([^)#:]+)\)", security + contributing):
        assert (ROOT / target).exists(), target


# -- every block of every page is checked --------------------------------------------------------

PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def blocks(page: Path) -> list[tuple[str, str]]:
    """The fenced blocks of ``page``: (language, body)."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", page.read_text(), flags=re.DOTALL | re.MULTILINE)


CHECKED_BY: dict[tuple[str, str, str], str] = {
    ("README.md", "sh", "python3 -m venv .venv && .venv/bin/pip i"): ".ci/run runs them",
    ("index.md", "sh", "python3 -m venv .venv && .venv/bin/pip i"): (
        "test_the_home_page_opens_with_the_readme_commands"
    ),
    ("README.md", "toml", "port = 7447                  # TheNodes'"): (
        "test_the_readme_shows_examples_node_toml_and_the_docs_include_it"
    ),
    ("README.md", "python", "import time"): "tests/test_readme.py",
    ("library.md", "python", "import time"): "test_the_library_page_shows_the_readme_example",
    ("configuration.md", "toml", '--8<-- "examples/node.toml"'): (
        "test_the_readme_shows_examples_node_toml_and_the_docs_include_it"
    ),
    ("configuration.md", "toml", "[network.persistence]"): (
        "test_the_defaults_shown_are_the_config_defaults"
    ),
    ("development.md", "sh", "python3 -m venv .venv && .venv/bin/pip i"): (
        "test_the_development_commands_name_tools_the_project_installs"
    ),
    ("development.md", "sh", ".venv/bin/pip install -e '.[docs]'"): (
        "test_the_development_commands_name_tools_the_project_installs"
    ),
    ("eclipse.md", "", "hostsim eclipse [--addresses N[,N...]] ["): (
        "test_the_eclipse_synopsis_is_the_commands_options"
    ),
    ("eclipse.md", "", "cut off  arm         plan: attacker/all "): (
        "test_the_eclipse_tables_have_the_commands_columns"
    ),
    ("embedding.md", "python", '--8<-- "examples/embed.py"'): (
        "test_the_embedding_example_runs_as_written_and_prints_what_the_page_shows"
    ),
    ("encryption.md", "toml", "[network.persistence]"): (
        "test_the_encryption_page_makes_a_key_a_node_accepts"
    ),
    ("encryption.md", "sh", "head -c 32 /dev/urandom > example.key; c"): (
        "test_the_encryption_page_makes_a_key_a_node_accepts"
    ),
    ("file.md", "toml", "schema = 2"): "test_the_file_shown_is_one_the_codec_reads",
    (
        "file.md",
        "toml",
        "[[peers]]",
    ): "test_the_entry_with_certificates_shown_is_one_the_codec_reads",
    ("development.md", "sh", "git worktree add /tmp/before main && pyt"): (
        "test_the_command_comparison_recipe_runs_the_script_it_names"
    ),
    ("operating.md", "", "peerstore: error: no peer file at /srv/n"): (
        "test_the_operating_page_shows_the_hint_to_import_thenodes_peers"
    ),
    ("configuration.md", "", "node.toml: [network.connection_policy] h"): (
        "test_the_configuration_page_shows_the_error_a_bound_gives"
    ),
    ("encryption.md", "sh", "peerstore verify -f data/plugins/peersto"): (
        "test_the_encryption_page_reads_a_sealed_aside_copy_back"
    ),
    ("tls.md", "sh", ".venv/bin/pip install '.[tls]'"): (
        "test_the_tls_page_installs_an_extra_the_project_has_and_shows_a_config_it_reads"
    ),
    ("tls.md", "toml", "[encryption]"): (
        "test_the_tls_page_installs_an_extra_the_project_has_and_shows_a_config_it_reads"
    ),
    ("tls.md", "text", "hostsim node: made a TLS certificate: /s"): (
        "test_the_tls_page_shows_what_a_node_and_hostsim_cert_print"
    ),
    ("tls.md", "sh", "cd tn && hostsim cert config.toml --copy"): (
        "test_the_tls_page_shows_what_a_node_and_hostsim_cert_print"
    ),
    ("tls.md", "text", "made: /srv/tn/pki/own/cert.pem, key /srv"): (
        "test_the_tls_page_shows_what_a_node_and_hostsim_cert_print"
    ),
    ("tls.md", "text", "transport   median ms   p90 ms  x base  "): (
        "test_the_tls_figures_have_the_benchmarks_columns"
    ),
    ("tls.md", "text", "WARNING thenodes_peerstore.plugin: peers"): (
        "test_the_tls_page_shows_the_warning_a_changed_certificate_gives"
    ),
}
"""Every fenced block that is not a console block: (page, language, the first 40 characters
of its first line) -> the test that checks it. Console blocks are run
(:func:`run_console_blocks`)."""


def test_every_block_of_every_page_is_checked() -> None:
    found = set()
    for page in PAGES:
        for lang, body in blocks(page):
            key = (page.name, lang, body.splitlines()[0][:40])
            if lang == "console":
                continue
            assert key in CHECKED_BY, f"{page.name}: a ```{lang} block no test checks: {key[2]!r}"
            found.add(key)
    assert found == set(CHECKED_BY), f"checks of blocks no page has: {set(CHECKED_BY) - found}"
    console = [p.name for p in PAGES if fenced(p.read_text(), "console")]
    for name in console:
        assert name in [*CONSOLE_PAGES, "operating.md", "embedding.md", *SHAPE_ONLY], name


def test_the_home_page_opens_with_the_readme_commands() -> None:
    [readme] = fenced((ROOT / "README.md").read_text(), "sh")
    [home] = fenced((DOCS / "index.md").read_text(), "sh")
    assert home == readme


def test_the_library_page_shows_the_readme_example() -> None:
    [readme] = fenced((ROOT / "README.md").read_text(), "python")
    [library] = fenced((DOCS / "library.md").read_text(), "python")
    assert library == readme


def test_the_defaults_shown_are_the_config_defaults() -> None:
    page = (DOCS / "configuration.md").read_text()
    [shown] = [b for b in fenced(page, "toml") if b.startswith("[network.persistence]")]
    table = tomllib.loads(shown)["network"]["persistence"]
    defaults = PersistenceConfig()
    assert set(table) <= {f.name for f in attrs.fields(PersistenceConfig)}
    for key, value in table.items():
        assert getattr(defaults, key) == value, key


def _installed_by_the_page(page: str) -> set[str]:
    """The commands a virtual environment has once the page's ``pip install`` lines ran: the
    interpreter, pip, the project's scripts and the distributions its named extras pull in
    (each of which installs a command of its own name: ruff, mypy, mkdocs, pytest)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    wanted = {e for named in re.findall(r"\.\[([\w,]+)\]", page) for e in named.split(",")}
    commands = {"python", "pip", *project["scripts"]}
    while wanted:
        for requirement in extras[wanted.pop()]:
            name, more = re.findall(r"^([\w-]+)(?:\[([\w,]+)\])?", requirement)[0]
            if name == project["name"]:
                wanted.update(more.split(","))
            else:
                commands.add(name)
    return commands


def test_the_development_commands_name_tools_the_project_installs() -> None:
    page = (DOCS / "development.md").read_text()
    for block in fenced(page, "sh"):
        subprocess.run(["bash", "-n"], input=block, text=True, check=True, timeout=30)
        for tool in re.findall(r"\.venv/bin/(\w+)", block):
            assert tool in _installed_by_the_page(page), f"development.md runs .venv/bin/{tool}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "mkdocs build --strict" in page
    assert "mkdocs build --strict" in ci


def test_the_eclipse_synopsis_is_the_commands_options() -> None:
    page = (DOCS / "eclipse.md").read_text()
    synopsis = page.split("```\n", 2)[1]
    shown = set(re.findall(r"\[(--[a-z-]+)", synopsis))
    parser = hostsim_cli._parser()
    [eclipse] = [
        a.choices["eclipse"] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    ]
    options = {o for a in eclipse._actions for o in a.option_strings if o.startswith("--")}
    assert shown == options - {"--help", "--verbose"}


def test_the_eclipse_tables_have_the_commands_columns() -> None:
    header = "  ".join(f"{name:<{width}}" for name, width in eclipse_columns).rstrip()
    page = (DOCS / "eclipse.md").read_text()
    tables = [b for b in fenced(page, "") if "cut off  arm" in b]
    assert tables
    for table in tables:
        first = next(line for line in table.splitlines() if line.startswith("cut off"))
        shown = first.split()
        assert shown == header.split()[: len(shown)], first
        assert " ".join(first.split()) in " ".join(header.split()) or first.startswith("cut off")


def test_the_encryption_page_makes_a_key_a_node_accepts(tmp_path: Path) -> None:
    page = (DOCS / "encryption.md").read_text()
    [setting] = fenced(page, "toml")
    table = tomllib.loads(setting)["network"]["persistence"]
    assert set(table) <= {f.name for f in attrs.fields(PersistenceConfig)}
    make = fenced(page, "sh")[0]  # the next reads a copy set aside back
    subprocess.run(["bash", "-c", make], cwd=tmp_path, check=True, timeout=30)
    key = tmp_path / "example.key"
    assert len(key.read_bytes()) == 32
    assert os.stat(key).st_mode & 0o777 == 0o600
    assert key_of(str(key), None) is not None  # a key the store accepts


def test_the_file_shown_is_one_the_codec_reads() -> None:
    page = (DOCS / "file.md").read_text()
    [shown] = [b for b in fenced(page, "toml") if b.startswith("schema = 2")]
    decoded = codec.decode(shown.encode(), realm="example")
    assert len(decoded.entries) == 3
    # Only the trailer, whose digest the page leaves out, is found wrong.
    assert all("integrity" in problem for problem in decoded.problems), decoded.problems


def test_the_tls_page_shows_the_warning_a_changed_certificate_gives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The line the page shows is the plugin's, for the address and fingerprints it names
    (tests/hostsim/test_live_certificates.py sees a node print it)."""
    page = (DOCS / "tls.md").read_text()
    [shown] = [b for b in fenced(page, "text") if b.startswith("WARNING thenodes_peerstore")]
    level, name, addr, new, old = re.fullmatch(
        r"(\w+) ([\w.]+): peerstore: (\S+) presented certificate (\w+), not the certificate "
        r"it was proven with, (\w+): .*\n",
        shown,
    ).groups()  # type: ignore[union-attr]
    check = store_module.check_certificate(
        addr, PeerEntry.new(addr, Source.CONNECTED, 1).replace(cert_fingerprint=old), new
    )
    with caplog.at_level(logging.INFO, logger="thenodes_peerstore"):
        plugin_module._say_certificate(check)
    [record] = caplog.records
    assert (record.levelname, record.name) == (level, name)
    assert f"{level} {name}: {record.getMessage()}\n" == shown


def test_the_entry_with_certificates_shown_is_one_the_codec_reads() -> None:
    page = (DOCS / "file.md").read_text()
    [shown] = [b for b in fenced(page, "toml") if b.startswith("[[peers]]")]
    file = codec.encode("example", 1763703840, []).replace(b"schema = 2", b"schema = 3")
    body = file[: file.index(b"\n[integrity]")] + b"\n" + shown.encode() + b"\n"
    decoded = codec.decode(body, realm="example")
    [entry] = decoded.entries
    # Only the trailer, which the page leaves out, is found missing.
    assert all("integrity" in problem for problem in decoded.problems), decoded.problems
    assert decoded.schema == codec.NEWEST_SCHEMA == 3
    assert entry.source is Source.CONNECTED
    assert entry.cert_fingerprint is not None
    assert entry.cert_changed_to is not None
    assert not entry.proven, "the page shows an entry whose proof a dial took away"
    assert codec.ENTRY.write(entry) == "\n" + shown  # the writer's own layout


# -- inline commands ---------------------------------------------------------------------------


def test_every_inline_command_of_the_docs_parses() -> None:
    """```hostsim cluster --nodes 4``` in a sentence is a command a reader may type: it must be
    one the command takes (a synopsis in brackets aside)."""
    parsers = {"hostsim": hostsim_cli._parser(), "peerstore": peerstore_cli._parser()}
    tried = 0
    for page in PAGES:
        text = re.sub(r"^```.*?^```$", "", page.read_text(), flags=re.DOTALL | re.MULTILINE)
        for span in re.findall(r"`((?:hostsim|peerstore) [^`]+)`", text.replace("\n", " ")):
            if any(c in span for c in "[]|<>") or "..." in span or span.endswith(" ..."):
                continue
            words = shlex.split(span)
            said = io.StringIO()
            try:
                with contextlib.redirect_stderr(said):
                    parsers[words[0]].parse_args(words[1:])
            except SystemExit:
                # A command or option named without its arguments (`hostsim node`), or with a
                # placeholder for a value, is a name, not a command line; anything else the
                # command refuses (an option it does not have) is a stale page.
                placeholder = re.search(r"\b[A-Z][A-Z_]*\b", span)  # N, FD, PID, CONFIG...
                required = re.search(
                    r"the following arguments are required|arguments .* is required"
                    r"|expected one argument",  # an option named without its value
                    said.getvalue(),
                )
                if not required and not (placeholder):
                    pytest.fail(f"{page.name}: `{span}`: {said.getvalue().splitlines()[-1]}")
            tried += 1
    assert tried >= 20


@pytest.mark.slow
def test_the_home_page_quotes_the_figures_the_demo_prints(tmp_path: Path) -> None:
    """The home page quotes the demo's measurement of the inbound attack with seeds up; the
    README's first command, `hostsim demo`, prints it."""
    page = " ".join((DOCS / "index.md").read_text().split())
    [(store, seeds)] = re.findall(r"\((\d+\.\d s) against (\d+\.\d s)\)", page)
    printed = run_shown("hostsim demo", tmp_path, timeout=900)
    [line] = [line for line in printed.splitlines() if "<= 1/3 of seeds only" in line]
    assert f": {store} vs {seeds}, ratio" in line, line


def test_the_configuration_page_shows_the_error_a_bound_gives(tmp_path: Path) -> None:
    [shown] = [
        body
        for lang, body in blocks(DOCS / "configuration.md")
        if not lang and body.startswith("node.toml: [network.connection")
    ]
    key_value = shown.split("] ", 1)[1].split(":", 1)[0]
    config = tmp_path / "node.toml"
    config.write_text(f"[network.connection_policy]\n{key_value}\n")
    with pytest.raises(HostsimError) as raised:
        HostConfig.from_file(config)
    assert str(raised.value).replace(str(config), "node.toml") == shown.strip()


def test_the_encryption_page_reads_a_sealed_aside_copy_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    page = (DOCS / "encryption.md").read_text()
    make, read_back = fenced(page, "sh")
    subprocess.run(["bash", "-c", make], cwd=tmp_path, check=True, timeout=30)
    monkeypatch.chdir(tmp_path)
    path = Path("data/plugins/peerstore/example.toml")
    open_book(path).close()  # a plain file, then damaged by hand
    with open_book(path) as book:
        book.store.record_connected("203.0.113.10:7447", node_id="node-b")
    damaged = path.read_bytes().replace(b"203.0.113.10:7447", b"203.0.113.10:0")
    path.write_bytes(damaged)
    config = PersistenceConfig(enabled=True, encryption="aes-256-gcm", key_file="example.key")
    open_book(path, config=config).close()  # what a node with encryption on does at its start
    verify, decrypt = read_back.splitlines()
    capfdbinary.readouterr()
    assert peerstore_cli.main(shlex.split(verify)[1:]) == 1  # damaged, as the page says
    command, _, out = decrypt.partition(" > ")
    assert peerstore_cli.main(shlex.split(command)[1:]) == 0
    assert capfdbinary.readouterr().out.endswith(damaged)
    assert out == "damaged.toml"


def test_the_tls_page_installs_an_extra_the_project_has_and_shows_a_config_it_reads() -> None:
    page = (DOCS / "tls.md").read_text()
    [install] = [b for b in fenced(page, "sh") if "pip install" in b]
    extra = re.fullmatch(r"\.venv/bin/pip install '\.\[(\w+)\]'\n", install)
    assert extra is not None, install
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extra.group(1) in project["optional-dependencies"]
    [shown] = fenced(page, "toml")
    settings = tls_settings(tomllib.loads(shown))
    assert settings is not None
    assert settings.mtls
    assert settings.policy.mode == "allowlist"


def _shape(line: str) -> str:
    """A printed line with what differs from run to run (paths, hex, dates) masked."""
    line = re.sub(r"/\S*?/pki/", "<dir>/pki/", line)
    line = re.sub(r"\b[0-9a-f]{8,}\b(\.\.\.)?", "<hex>", line)
    return re.sub(r"\d{4}-\d\d-\d\d", "<date>", line)


def test_the_tls_page_shows_what_a_node_and_hostsim_cert_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (DOCS / "tls.md").read_text()
    node_lines, cert_lines = fenced(page, "text")[:2]
    [command] = [b for b in fenced(page, "sh") if "hostsim cert" in b]
    (tmp_path / "tn").mkdir()
    (tmp_path / "tn" / "config.toml").write_text(
        '[node]\nid = "tn-1"\n[realm]\nname = "Example"\n[encryption]\nenabled = true\n'
        '[encryption.paths]\nown_certificate = "pki/own/cert.pem"\n'
        'own_private_key = "pki/own/key.pem"\n'
    )
    monkeypatch.chdir(tmp_path / "tn")
    assert command.startswith("cd tn && hostsim cert ")
    assert hostsim_cli.main(shlex.split(command.split(" && ", 1)[1])[1:]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [_shape(line) for line in printed] == [_shape(line) for line in cert_lines.splitlines()]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "node.toml").write_text(
        (tmp_path / "tn" / "config.toml").read_text().replace("tn-1", "node-a")
    )
    monkeypatch.chdir(tmp_path / "a")
    config = HostConfig.from_file(tmp_path / "a" / "node.toml")
    settings = live_settings(config)
    assert settings.tls is not None
    said: list[str] = []
    LiveNode(config, settings, status=said.append)._start_tls(settings.tls)
    assert [_shape(f"hostsim node: {line}") for line in said] == [
        _shape(line) for line in node_lines.splitlines()
    ]


def test_the_tls_figures_have_the_benchmarks_columns() -> None:
    page = (DOCS / "tls.md").read_text()
    [table] = [b for b in fenced(page, "text") if b.startswith("transport")]
    source = (ROOT / "benchmarks" / "bench_tls.py").read_text()
    for column in re.split(r"\s{2,}", table.splitlines()[0].strip()):
        assert f"'{column}'" in source, column


def test_the_command_comparison_recipe_runs_the_script_it_names() -> None:
    [recipe] = [b for lang, b in blocks(DOCS / "development.md") if b.startswith("git worktree")]
    *setup, compare = recipe.splitlines()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra in re.findall(r"\[(\w+)\]'", "".join(setup)):
        assert extra in extras["optional-dependencies"]
    _, script, before, after = shlex.split(compare)
    helped = subprocess.run(
        [sys.executable, str(ROOT / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert helped.returncode == 0
    assert "before after" in helped.stdout  # the two interpreters, in the order shown
    assert (before, after) == ("/tmp/before/.venv/bin/python", ".venv/bin/python")


def test_the_operating_page_shows_the_hint_to_import_thenodes_peers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [shown] = [
        body
        for lang, body in blocks(DOCS / "operating.md")
        if not lang and body.startswith("peerstore: error: no peer file")
    ]
    node = tmp_path / "srv" / "node-a"
    (node / "state").mkdir(parents=True)
    (node / "state" / "peers.json").write_text("[]")
    (node / "node.toml").write_text(
        '[realm]\nname = "Example"\n[node]\nid = "node-a"\nstate_dir = "state"\n'
        "[network.persistence]\nenabled = true\n"
    )
    monkeypatch.chdir(node)
    assert peerstore_cli.main(["list", "--config", "node.toml"]) == 2
    said = capsys.readouterr().err.replace(str(tmp_path), "")
    assert said == shown

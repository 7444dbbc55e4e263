"""The documentation's walkthroughs and examples run as written, and its copies match the files."""

from __future__ import annotations

import importlib
import logging
import os
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hostsim.config import HostConfig
from hostsim.live.processes import NodeProcess
from tests.support.paths import ROOT
from tests.support.processes import node_processes
from thenodes_peerstore.model import network_group

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


def normalise(text: str) -> list[str]:
    """What a run prints, times aside: the clock and the column widths it pads to vary."""
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "<date>", text)
    text = re.sub(r"\b\d{10}\b", "<time>", text)
    text = re.sub(r"\b(now|\d+ (s|min|h|d) ago)\b", "<ago>", text)
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


def run_shown(command: str, cwd: Path) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONUNBUFFERED="1")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
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


def test_the_operating_walkthrough_runs_as_written_and_prints_what_it_shows(
    tmp_path: Path,
) -> None:
    page = (DOCS / "operating.md").read_text()
    walkthrough = [step for block in fenced(page, "console") for step in steps(block)]
    assert len(walkthrough) >= 15
    assert walkthrough[0][0].startswith("peerstore add "), "the first step makes the file"
    for command, shown in walkthrough:
        printed = run_shown(command, tmp_path).replace(str(tmp_path), SHOWN_DIR)
        assert normalise(printed) == normalise(shown), f"$ {command}"


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

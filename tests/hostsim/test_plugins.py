"""get_plugin_manager(): the enable list, the manifest checks, loading and registration."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import attrs
import pytest

from hostsim.config import HostConfig
from hostsim.plugins import (
    MANIFEST_PATH,
    PluginError,
    PluginManifest,
    get_plugin_manager,
    loaded_once,
    read_manifest,
    spec_hook_names,
)
from hostsim.testing import (
    FakeDistribution,
    FakeEntryPoint,
    RecordingPlugin,
    fake_entry_point,
    hookimpl,
    manifest_text,
)

ALL_HOOKS = sorted(spec_hook_names())


def make_config(tmp_path: Path, *enabled: str) -> HostConfig:
    data = {
        "realm": {"name": "Example"},
        "node": {"id": "node-a"},
        "plugins": {"enabled": list(enabled)},
    }
    return HostConfig.from_mapping(data, base_dir=tmp_path)


class TickOnly:
    """A plugin with a single hook."""

    @hookimpl
    def on_tick(self, host: Any) -> None:
        pass


class Renamed:
    """A plugin whose method name differs from the hook it implements."""

    @hookimpl(specname="on_tick")
    def tick(self, host: Any) -> None:
        pass


def entry_point_with(
    manifest: str | None, target: object = TickOnly, **changes: Any
) -> FakeEntryPoint:
    files = {} if manifest is None else {MANIFEST_PATH: manifest}
    ep = FakeEntryPoint(
        name="ticker",
        value="tests.plugins:TickOnly",
        dist=FakeDistribution("1.0.0", files),
        target=target,
    )
    return attrs.evolve(ep, **changes)


def good_manifest(**changes: Any) -> str:
    values: dict[str, Any] = {
        "name": "ticker",
        "version": "1.0.0",
        "entry_point": "tests.plugins:TickOnly",
        "hooks": ["on_tick"],
    }
    values.update(changes)
    return manifest_text(**values)


@attrs.frozen
class UnloadableEntryPoint:
    """An entry point that must not be loaded."""

    name: str
    value: str
    dist: FakeDistribution | None
    group: str = "thenodes"

    def load(self) -> Any:
        raise AssertionError("the manifest should have been refused before loading")


def test_only_enabled_plugins_are_loaded_in_config_order(tmp_path: Path) -> None:
    eps = [
        fake_entry_point("alpha", RecordingPlugin),
        fake_entry_point("beta", TickOnly),
        fake_entry_point("gamma", RecordingPlugin),
    ]
    pm = get_plugin_manager(make_config(tmp_path, "gamma", "beta"), entry_points=eps)

    assert [name for name, _ in pm.list_name_plugin()] == ["gamma", "beta"]
    assert isinstance(pm.get_plugin("gamma"), RecordingPlugin)
    assert isinstance(pm.get_plugin("beta"), TickOnly)


def test_each_manager_gets_its_own_instance(tmp_path: Path) -> None:
    config = make_config(tmp_path, "alpha")
    eps = [fake_entry_point("alpha", RecordingPlugin)]
    first = get_plugin_manager(config, entry_points=eps).get_plugin("alpha")
    second = get_plugin_manager(config, entry_points=eps).get_plugin("alpha")
    assert first is not second


def test_no_enabled_plugins_means_no_plugins(tmp_path: Path) -> None:
    pm = get_plugin_manager(
        make_config(tmp_path), entry_points=[fake_entry_point("alpha", RecordingPlugin)]
    )
    assert pm.list_name_plugin() == []
    assert pm.hook.on_startup.get_hookimpls() == []


def test_entry_points_of_other_groups_are_ignored(tmp_path: Path) -> None:
    ep = attrs.evolve(fake_entry_point("alpha", RecordingPlugin), group="pytest11")
    with pytest.raises(PluginError, match="not installed"):
        get_plugin_manager(make_config(tmp_path, "alpha"), entry_points=[ep])


def test_missing_plugin_names_it_and_lists_the_installed(tmp_path: Path) -> None:
    eps = [fake_entry_point("beta", TickOnly), fake_entry_point("alpha", TickOnly)]
    with pytest.raises(PluginError) as info:
        get_plugin_manager(make_config(tmp_path, "peerstore"), entry_points=eps)
    assert str(info.value) == (
        "plugin 'peerstore' is enabled in [plugins] enabled but not installed"
        " (installed 'thenodes' plugins: alpha, beta)"
    )


def test_missing_plugin_with_nothing_installed(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"installed 'thenodes' plugins: none\)"):
        get_plugin_manager(make_config(tmp_path, "peerstore"), entry_points=[])


def test_a_good_manifest_loads(tmp_path: Path) -> None:
    pm = get_plugin_manager(
        make_config(tmp_path, "ticker"), entry_points=[entry_point_with(good_manifest())]
    )
    assert isinstance(pm.get_plugin("ticker"), TickOnly)


def test_specname_hooks_count_under_the_hook_name(tmp_path: Path) -> None:
    ep = entry_point_with(good_manifest(), target=Renamed)
    pm = get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])
    assert [impl.plugin_name for impl in pm.hook.on_tick.get_hookimpls()] == ["ticker"]


@pytest.mark.parametrize(
    ("manifest", "dist", "message"),
    [
        (None, True, f"plugin 'ticker': {MANIFEST_PATH}: missing from the installed distribution"),
        ("x", False, f"plugin 'ticker': {MANIFEST_PATH}: the entry point has no distribution"),
        ("[plugin\n", True, f"plugin 'ticker': {MANIFEST_PATH}: invalid TOML: "),
        ("[other]\n", True, "[plugin]: missing table (required)"),
        ('[plugin]\nname = "ticker"\n', True, "[plugin] version: missing (required)"),
        (
            good_manifest(name="tocker"),
            True,
            '[plugin] name = "tocker" does not match the entry point name "ticker"',
        ),
        (
            good_manifest(version="0.9"),
            True,
            '[plugin] version = "0.9" does not match the installed version "1.0.0"',
        ),
        (
            good_manifest(entry_point="tests.plugins:Other"),
            True,
            '[plugin] entry_point = "tests.plugins:Other"'
            ' does not match the entry point "tests.plugins:TickOnly"',
        ),
        (
            good_manifest(hooks=["on_tick", "on_frobnicate"]),
            True,
            "[plugin] hooks names hooks this host does not have: on_frobnicate",
        ),
        (
            good_manifest(hooks=["on_tick", "on_tick"]),
            True,
            '[plugin] hooks: "on_tick" is listed twice',
        ),
        (
            good_manifest() + "[config]\nsection = 'x'\nflavour = 1\n",
            True,
            '[config]: unknown key "flavour"',
        ),
        (
            '[plugin]\nname = "ticker"\nversion = "1.0.0"\n'
            'entry_point = "tests.plugins:TickOnly"\nhooks = "on_tick"\n',
            True,
            '[plugin] hooks: expected an array of strings, got "on_tick"',
        ),
    ],
)
def test_a_bad_manifest_is_refused_before_loading(
    tmp_path: Path, manifest: str | None, dist: bool, message: str
) -> None:
    files = {} if manifest is None else {MANIFEST_PATH: manifest}
    ep = UnloadableEntryPoint(
        name="ticker",
        value="tests.plugins:TickOnly",
        dist=FakeDistribution("1.0.0", files) if dist else None,
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])
    assert message in str(info.value)
    assert str(info.value).startswith("plugin 'ticker': ")


def test_hooks_implemented_but_not_declared(tmp_path: Path) -> None:
    ep = entry_point_with(good_manifest(), target=RecordingPlugin)
    with pytest.raises(PluginError) as info:
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])
    assert str(info.value) == (
        f"plugin 'ticker': {MANIFEST_PATH} [plugin] hooks does not match tests.plugins:TickOnly: "
        "implemented but not declared: on_bootstrap, on_connect, on_dial_failed, on_disconnect,"
        " on_peer_list, on_shutdown, on_startup"
    )


def test_hooks_declared_but_not_implemented(tmp_path: Path) -> None:
    ep = entry_point_with(good_manifest(hooks=["on_tick", "on_shutdown"]))
    with pytest.raises(PluginError, match=r"declared but not implemented: on_shutdown$"):
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])


def test_entry_point_must_name_a_class(tmp_path: Path) -> None:
    ep = entry_point_with(good_manifest(), target=TickOnly())
    with pytest.raises(
        PluginError,
        match=r"plugin 'ticker': tests.plugins:TickOnly is not a class \(got TickOnly\)",
    ):
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])


def test_load_failure_is_a_plugin_error(tmp_path: Path) -> None:
    class Broken(FakeEntryPoint):
        def load(self) -> Any:
            raise ModuleNotFoundError("No module named 'tests.plugins'")

    base = entry_point_with(good_manifest())
    ep = Broken(name=base.name, value=base.value, dist=base.dist, target=None)
    with pytest.raises(
        PluginError, match=r"cannot load tests\.plugins:TickOnly: ModuleNotFoundError"
    ) as info:
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_constructor_failure_is_a_plugin_error(tmp_path: Path) -> None:
    class NeedsArgs(TickOnly):
        def __init__(self, required: int) -> None:
            self.required = required

    ep = entry_point_with(good_manifest(), target=NeedsArgs)
    with pytest.raises(PluginError, match=r"cannot create tests.plugins:TickOnly\(\): TypeError"):
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])


def test_real_entry_point_objects_are_accepted(tmp_path: Path) -> None:
    ep = importlib.metadata.EntryPoint("ticker", "tests.plugins:TickOnly", "thenodes")
    with pytest.raises(PluginError, match="the entry point has no distribution"):
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=[ep])


def test_the_same_name_from_two_distributions(tmp_path: Path) -> None:
    eps = [fake_entry_point("ticker", TickOnly), fake_entry_point("ticker", RecordingPlugin)]
    with pytest.raises(PluginError, match="plugin 'ticker' is installed twice"):
        get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=eps)


def test_extra_plugins_are_registered_after_the_enabled_ones(tmp_path: Path) -> None:
    recorder = RecordingPlugin()
    pm = get_plugin_manager(
        make_config(tmp_path, "alpha"),
        extra_plugins={"recorder": recorder, "ticker": TickOnly()},
        entry_points=[fake_entry_point("alpha", TickOnly)],
    )
    assert [name for name, _ in pm.list_name_plugin()] == ["alpha", "recorder", "ticker"]
    assert pm.get_plugin("recorder") is recorder


def test_extra_plugin_with_an_unknown_hook(tmp_path: Path) -> None:
    class Typo:
        @hookimpl
        def on_tik(self, host: Any) -> None:
            pass

    with pytest.raises(PluginError, match=r"plugin 'typo': unknown hook 'on_tik'"):
        get_plugin_manager(make_config(tmp_path), extra_plugins={"typo": Typo()}, entry_points=[])


def test_extra_plugin_with_a_bad_signature(tmp_path: Path) -> None:
    class BadArgs:
        @hookimpl
        def on_tick(self, host: Any, when: float) -> None:
            pass

    with pytest.raises(PluginError, match=r"plugin 'bad': cannot register it: .*'when'") as info:
        get_plugin_manager(make_config(tmp_path), extra_plugins={"bad": BadArgs()}, entry_points=[])
    assert "\n" not in str(info.value)


def test_hook_wrappers_are_refused(tmp_path: Path) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_tick(self, host: Any) -> Any:
            return (yield)

    with pytest.raises(
        PluginError, match=r"plugin 'wrap': Wrapper\.on_tick: hook wrappers are not supported"
    ):
        get_plugin_manager(
            make_config(tmp_path), extra_plugins={"wrap": Wrapper()}, entry_points=[]
        )


def test_an_extra_plugin_cannot_take_an_enabled_name(tmp_path: Path) -> None:
    with pytest.raises(
        PluginError, match="plugin 'alpha' is both enabled in the config and given as extra"
    ):
        get_plugin_manager(
            make_config(tmp_path, "alpha"),
            extra_plugins={"alpha": TickOnly()},
            entry_points=[fake_entry_point("alpha", TickOnly)],
        )


def test_the_manager_has_every_hook_spec(tmp_path: Path) -> None:
    pm = get_plugin_manager(make_config(tmp_path), entry_points=[])
    assert pm.project_name == "thenodes"
    for name in ALL_HOOKS:
        assert getattr(pm.hook, name).has_spec()
    assert ALL_HOOKS == [
        "on_bootstrap",
        "on_connect",
        "on_dial_failed",
        "on_disconnect",
        "on_peer_list",
        "on_shutdown",
        "on_startup",
        "on_tick",
    ]


def test_read_manifest() -> None:
    text = manifest_text(
        "ticker",
        "1.0.0",
        "tests.plugins:TickOnly",
        ["on_tick"],
        summary="Ticks.",
        config_section="network.ticker",
        config_defaults={"enabled": False, "every": [1, 2]},
    )
    manifest = read_manifest(entry_point_with(text))
    assert manifest == PluginManifest(
        name="ticker",
        version="1.0.0",
        summary="Ticks.",
        entry_point="tests.plugins:TickOnly",
        hooks=("on_tick",),
        config_section="network.ticker",
        config_defaults={"enabled": False, "every": (1, 2)},
    )
    with pytest.raises(TypeError):
        manifest.config_defaults["enabled"] = True  # type: ignore[index]


def test_manifest_without_config_table() -> None:
    manifest = PluginManifest.from_toml(good_manifest(), source="plugin.toml")
    assert manifest.config_section is None
    assert manifest.config_defaults == {}


def test_fake_entry_point_manifest_lists_the_implemented_hooks() -> None:
    ep = fake_entry_point("recorder", RecordingPlugin, version="2.0")
    assert read_manifest(ep).hooks == tuple(ALL_HOOKS)
    assert read_manifest(ep).version == "2.0"


def test_a_hook_wrapper_in_an_installed_plugin_is_refused(tmp_path: Path) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def on_tick(self, host: Any) -> Any:
            return (yield)

    value = f"{Wrapper.__module__}:{Wrapper.__qualname__}"
    ep = fake_entry_point(
        "wrap", Wrapper, manifest=manifest_text("wrap", "1.0.0", value, ["on_tick"])
    )
    with pytest.raises(
        PluginError, match=r"plugin 'wrap': Wrapper\.on_tick: hook wrappers are not supported"
    ):
        get_plugin_manager(make_config(tmp_path, "wrap"), entry_points=[ep])


class CountingDistribution:
    """A distribution that counts how often its metadata is read."""

    def __init__(self, inner: FakeDistribution) -> None:
        self.inner = inner
        self.reads: list[str] = []

    @property
    def version(self) -> str:
        self.reads.append("version")
        return self.inner.version

    def read_text(self, filename: str) -> str | None:
        self.reads.append(filename)
        return self.inner.read_text(filename)


class CountingEntryPoint:
    """An entry point that counts its imports and can fail the first ``fail`` of them."""

    def __init__(self, ep: FakeEntryPoint, *, fail: int = 0) -> None:
        self.name, self.value, self.group = ep.name, ep.value, ep.group
        assert ep.dist is not None
        self.dist = CountingDistribution(ep.dist)
        self.target = ep.target
        self.loads = 0
        self.fail = fail

    def load(self) -> Any:
        self.loads += 1
        if self.loads <= self.fail:
            raise ImportError("not yet")
        return self.target


def test_loaded_once_reads_metadata_and_imports_once_but_makes_a_plugin_per_manager(
    tmp_path: Path,
) -> None:
    counting = CountingEntryPoint(fake_entry_point("recorder", RecordingPlugin))
    eps = loaded_once([counting])
    config = make_config(tmp_path, "recorder")

    managers = [get_plugin_manager(config, entry_points=eps) for _ in range(5)]

    plugins = [pm.get_plugin("recorder") for pm in managers]
    assert all(isinstance(p, RecordingPlugin) for p in plugins)
    assert len({id(p) for p in plugins}) == 5
    assert counting.loads == 1
    assert sorted(counting.dist.reads) == [MANIFEST_PATH, "version"]


def test_loaded_once_tries_a_failed_import_again_at_the_next_start(tmp_path: Path) -> None:
    counting = CountingEntryPoint(fake_entry_point("recorder", RecordingPlugin), fail=1)
    eps = loaded_once([counting])
    config = make_config(tmp_path, "recorder")

    with pytest.raises(PluginError, match=r"cannot load .*ImportError: not yet"):
        get_plugin_manager(config, entry_points=eps)
    pm = get_plugin_manager(config, entry_points=eps)

    assert isinstance(pm.get_plugin("recorder"), RecordingPlugin)
    assert counting.loads == 2


def test_loaded_once_still_checks_every_start_against_the_manifest(tmp_path: Path) -> None:
    ep = entry_point_with(good_manifest(), target=RecordingPlugin)
    eps = loaded_once([ep])
    for _ in range(2):
        with pytest.raises(PluginError, match="implemented but not declared"):
            get_plugin_manager(make_config(tmp_path, "ticker"), entry_points=eps)


def test_a_table_turned_on_that_no_loaded_plugin_reads_is_warned_of_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``[network.persistence] enabled = true`` without the plugin in ``[plugins]``: said once
    a process, naming the installed plugin that reads it; not said when it is loaded."""
    from hostsim import plugins

    plugins._warned.clear()
    data = {
        "realm": {"name": "Example"},
        "node": {"id": "node-a"},
        "network": {"persistence": {"enabled": True}},
    }
    config = HostConfig.from_mapping(data, base_dir=tmp_path)
    with caplog.at_level("WARNING", logger="hostsim.plugins"):
        get_plugin_manager(config)
        get_plugin_manager(config)
    said = [r.getMessage() for r in caplog.records if r.name == "hostsim.plugins"]
    assert said == [
        "[network.persistence] enabled = true, but no loaded plugin reads it, so it does"
        " nothing: installed plugin(s) 'peerstore' read it; list them in [plugins] enabled"
    ]

    caplog.clear()
    plugins._warned.clear()
    loaded = HostConfig.from_mapping(
        {**data, "plugins": {"enabled": ["peerstore"]}}, base_dir=tmp_path
    )
    with caplog.at_level("WARNING", logger="hostsim.plugins"):
        get_plugin_manager(loaded)
        get_plugin_manager(HostConfig.from_mapping({**data, "network": {}}, base_dir=tmp_path))
    assert not [r for r in caplog.records if r.name == "hostsim.plugins"]

"""The simulator's plugin managers read a plugin class's hooks once and find what pluggy finds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
import pytest

from hostsim import hookspecs
from hostsim.config import HostConfig
from hostsim.plugins import ENTRY_POINT_GROUP, PluginError, get_plugin_manager
from hostsim.sim.loading import HookNames
from hostsim.testing import RecordingPlugin, hookimpl


class Ticking:
    @hookimpl
    def on_tick(self, host: Any) -> None:
        pass


class Wrapping:
    @hookimpl(wrapper=True)
    def on_tick(self, host: Any) -> Any:
        return (yield)


def config(tmp_path: Path) -> HostConfig:
    data = {"realm": {"name": "Example"}, "node": {"id": "n"}, "plugins": {"enabled": []}}
    return HostConfig.from_mapping(data, base_dir=tmp_path)


def hooks_of(pm: pluggy.PluginManager, plugin: object) -> dict[str, list[object]]:
    return {
        caller.name: [impl.function for impl in caller.get_hookimpls() if impl.plugin is plugin]
        for caller in pm.get_hookcallers(plugin) or ()
    }


def test_every_start_finds_the_hooks_pluggy_finds_bound_to_its_own_instance(
    tmp_path: Path,
) -> None:
    names = HookNames()
    seen = []
    for _ in range(3):
        plugin = RecordingPlugin()
        ours = get_plugin_manager(
            config(tmp_path), extra_plugins={"rec": plugin}, manager=names.manager
        )
        theirs = pluggy.PluginManager(ENTRY_POINT_GROUP)
        theirs.add_hookspecs(hookspecs)
        theirs.register(plugin, name="rec")
        assert hooks_of(ours, plugin) == hooks_of(theirs, plugin)
        ours.hook.on_tick(host=None)
        seen.append(plugin.hooks("on_tick"))
    assert all(len(calls) == 1 for calls in seen)  # each start's instance, called once


def test_what_an_instance_holds_itself_is_read_off_that_instance(tmp_path: Path) -> None:
    names = HookNames()
    get_plugin_manager(config(tmp_path), extra_plugins={"p": Ticking()}, manager=names.manager)
    plain = Ticking()
    plain.on_tick = lambda host: None  # type: ignore[method-assign]  # no longer a hook
    pm = get_plugin_manager(config(tmp_path), extra_plugins={"p": plain}, manager=names.manager)
    assert hooks_of(pm, plain) == {}

    calls: list[object] = []

    @hookimpl
    def on_tick(host: Any) -> None:
        calls.append(host)

    marked = Ticking()
    marked.on_tick = on_tick  # type: ignore[method-assign]
    pm = get_plugin_manager(config(tmp_path), extra_plugins={"p": marked}, manager=names.manager)
    pm.hook.on_tick(host="view")
    assert calls == ["view"]


def test_a_wrapper_is_refused_through_the_record_too(tmp_path: Path) -> None:
    names = HookNames()
    for _ in range(2):
        with pytest.raises(PluginError, match="hook wrappers are not supported"):
            get_plugin_manager(
                config(tmp_path), extra_plugins={"w": Wrapping()}, manager=names.manager
            )

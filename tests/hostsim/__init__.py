"""Tests of hostsim: the host, its config and command, the simulator and the live node."""

"""hostsim: a TheNodes-style node host, simulated on a virtual clock."""

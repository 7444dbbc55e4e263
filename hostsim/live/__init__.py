"""hostsim's live world: nodes on real TCP sockets and the real clock, and node processes on
loopback to start, watch and stop."""

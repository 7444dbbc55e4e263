"""hostsim's live world: nodes on real TCP sockets and the real clock, and the cluster
experiment that kills and restarts them."""

"""The experiment hostsim was built for: nodes restarting with the peerstore plugin keeping
their peers, against nodes that start from their seeds only, in both worlds.

Everything that knows the plugin by name is here: the two arms as host-config overlays
(:mod:`~hostsim.experiment.arms`), the rejoin table and the claims
(:mod:`~hostsim.experiment.report`), the simulator's demo (:mod:`~hostsim.experiment.demo`),
the eclipse experiment (:mod:`~hostsim.experiment.eclipse`) and the live cluster
(:mod:`~hostsim.experiment.cluster`). The simulator and the live node run whatever plugins a
host config enables, and name none.
"""

"""Tests of thenodes_peerstore: the store, its file, the plugin and the peerstore command."""

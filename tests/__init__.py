"""The project's tests; tests/README.md says where each kind stands."""

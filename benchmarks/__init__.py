"""Benchmarks and campaigns that print figures; none runs in the tests.

Each runs from the project root as a module, ``python -m benchmarks.NAME``, so that those that
drive the tests' own tools import them as ``tests.support``.
"""

"""Tests of thenodes_naming: realm codes as TheNodes derives them."""

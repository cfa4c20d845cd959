"""Shared fixtures: the demo tenant's named people (alice, bob, an admin, an outsider)."""

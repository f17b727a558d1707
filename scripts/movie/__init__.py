"""Operator tooling for the movie application: seed data, a CLI, and an in-process stack."""

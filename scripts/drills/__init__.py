"""Failure drills: Chaos Toolkit experiments with Firedrill's own actions and probes.

The experiments in ``experiments/`` are plain Chaos Toolkit files (``chaos run`` works on
them); ``python -m scripts.drills`` runs them with measurement and a report.
"""

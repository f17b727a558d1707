"""Metric-driven deployments: rolling, canary and blue-green with automatic analysis (issue 15).

``contract`` holds the types the rollout driver and the analysis share; the analysis decides,
the driver moves traffic and versions (Nomad deployments API or the local platform).
"""

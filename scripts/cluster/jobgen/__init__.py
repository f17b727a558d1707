"""Generates jobs/*.nomad.hcl from the service catalog, the deployment table and the timing profiles.

The output is committed (``nomad job run jobs/x.nomad.hcl`` needs no Python) and a staleness test
fails ``make validate`` when it drifts: ``python -m scripts.cluster.jobgen render`` rewrites it.
"""

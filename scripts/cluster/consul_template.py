"""The consul-template functions the jobs' ``template`` blocks may call, by what they need to render.

Names from consul-template v0.42.1 (``template/funcs.go``, the ``funcMap``), the engine Nomad's
template runner and OpenBao's agent embed. OpenBao's agent renders the Vault and environment
functions but defines none of the Consul or Nomad ones.
"""

from __future__ import annotations

VAULT_FUNCTIONS = frozenset({"secret", "secrets", "pkiCert"})
CONSUL_FUNCTIONS = frozenset(
    {
        "service",
        "services",
        "connect",
        "key",
        "keyExists",
        "keyOrDefault",
        "ls",
        "safeLs",
        "tree",
        "safeTree",
        "node",
        "nodes",
        "datacenters",
        "caLeaf",
        "caRoots",
        "checks",
        "exportedServices",
        "importedServices",
        "partitions",
        "peerings",
    }
)
NOMAD_FUNCTIONS = frozenset(
    {"nomadService", "nomadServices", "nomadVar", "nomadVarList", "nomadVarListSafe", "nomadVarExists"}
)
ENV_FUNCTIONS = frozenset({"env", "mustEnv", "envOrDefault"})

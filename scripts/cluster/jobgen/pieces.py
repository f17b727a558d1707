"""The pieces every generated job shares, written once: variables, update/restart/reschedule, checks,
the Vault block and the certificate templates.

Only functions from Nomad's jobspec function table may appear in expressions (``can``,
``regex_replace``, ``contains``, ...; not Terraform's ``endswith``/``regex``): the schema check in
``scripts.cluster.jobspec_lint`` holds the generated files to that.
"""

from __future__ import annotations

from collections.abc import Mapping

from scripts.local.memory_limits import cluster_environment
from scripts.vault.identity_requests import PkiRequest
from services.common.profiles import PRODUCTION, duration

from .hcl import Attr, Block, Comment, Expr, Item, Value, block

IMAGE_TAG_PATTERN = "^[^@]*:([A-Za-z0-9_][A-Za-z0-9._-]*)$"
# The version a service reports: the image's tag, or the first 63 characters of its digest (both
# fit services.common.config's VERSION_PATTERN).
IMAGE_VERSION_PATTERN = "^.*[:@]([A-Za-z0-9_][A-Za-z0-9._-]{0,62}).*$"
SERVICE_UID = 10001  # the Dockerfile's USER
CHECK_INTERVAL = "10s"
CHECK_TIMEOUT = "2s"
# A drained service must finish in-flight requests before Nomad's SIGKILL.
KILL_TIMEOUT = "20s"
# Consul-template delimiters that never occur in the copied files, so they pass through verbatim.
VERBATIM_LEFT = "<<FIREDRILL-VERBATIM<<"
VERBATIM_RIGHT = ">>FIREDRILL-VERBATIM>>"


def variable(
    name: str,
    kind: str,
    description: str,
    default: Value | None = None,
    validation: tuple[str, str] | None = None,
) -> Block:
    attrs: dict[str, Value] = {"type": Expr(kind), "description": description}
    if default is not None:
        attrs["default"] = default
    node = block("variable", name, attrs=attrs)
    if validation:
        condition, message = validation
        node.add(block("validation", attrs={"condition": Expr(condition), "error_message": message}))
    return node


def datacenters() -> Block:
    return variable("datacenters", "list(string)", "Nomad datacenters the job may run in.", ["dc1"])


def pinned_image(name: str, description: str, default: str) -> Block:
    tag = f'regex_replace(var.{name}, "{IMAGE_TAG_PATTERN}", "$1")'
    return variable(
        name,
        "string",
        description,
        default,
        (
            f'{tag} != var.{name} && {tag} != "latest" || length(split("@sha256:", var.{name})) == 2',
            "The image must carry an explicit version tag other than latest (or a sha256 digest).",
        ),
    )


def image_version(name: str) -> Expr:
    """FIREDRILL_VERSION and the Consul meta ``version`` (the ``version`` label of every series) of a
    task running ``var.<name>``; a canary rollout overrides both with the version it deploys."""
    return Expr(f'regex_replace(var.{name}, "{IMAGE_VERSION_PATTERN}", "$1")')


def profile_variable(description: str) -> Block:
    return variable(
        "profile",
        "string",
        description,
        PRODUCTION.name,
        ('contains(["drill", "production"], var.profile)', "The profile must be drill or production."),
    )


def count_variable(service: str, default: int) -> Block:
    return variable(
        f"{service}_count",
        "number",
        f"Instances of {service}.",
        default,
        (f"var.{service}_count >= 1 && var.{service}_count <= 20", "Between 1 and 20 instances."),
    )


def service_variables() -> list[Block]:
    """The variables every application job declares."""
    return [
        datacenters(),
        pinned_image(
            "image", "Firedrill services image, pinned to a version tag (never latest).", "firedrill/services:0.1.0"
        ),
        variable(
            "service_uid",
            "number",
            "User id the services image runs as (Dockerfile USER): owner of the files rendered into secrets/.",
            SERVICE_UID,
        ),
        variable(
            "service_gid",
            "number",
            "Group id the services image runs as (Dockerfile USER): group of the files rendered into secrets/.",
            SERVICE_UID,
        ),
        profile_variable("Timing profile: production on a cluster, drill for fast rehearsals."),
        variable(
            "log_level",
            "string",
            "Service log level.",
            "INFO",
            ('contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)', "DEBUG, INFO, WARNING or ERROR."),
        ),
        variable(
            "trace_sample_ratio",
            "number",
            "Share (0..1) of new requests an edge service starts a trace for (FIREDRILL_TRACE_RATIO); "
            "internal services only continue sampled traces.",
            Expr("0.1"),
            (
                "var.trace_sample_ratio >= 0 && var.trace_sample_ratio <= 1",
                "The trace ratio must be a number from 0 to 1, such as 0.1.",
            ),
        ),
        cert_ttl_variable("Lifetime of the service certificate issued by Vault PKI (pki_int)."),
        variable(
            "auto_promote",
            "bool",
            "Promote healthy canaries without waiting for the canary analysis (make deploy promotes them itself).",
            False,
        ),
    ]


def cert_ttl_variable(description: str) -> Block:
    return variable("cert_ttl", "string", description, f"{PRODUCTION.cert_ttl_s // 3600}h")


def update(*, canary: int, auto_promote: Value, healthy_deadline: str = "3m") -> Block:
    attrs: dict[str, Value] = {"max_parallel": 1}
    if canary:
        attrs |= {"canary": canary, "auto_promote": auto_promote}
    attrs |= {
        "auto_revert": True,
        "health_check": "checks",
        "min_healthy_time": "10s",
        "healthy_deadline": healthy_deadline,
        "progress_deadline": "10m",
    }
    return block("update", attrs=attrs)


def stateful_update() -> list[Item]:
    """No canary for a single writer: a canary starts beside the old allocation with an empty disk
    (only a replacement inherits alloc/data), and promoting it would drop the data."""
    return [
        Comment(
            "One writer with its data on the allocation's disk: rolling replacement, no canary. A canary\n"
            "starts with an empty alloc/data (only a replacement inherits it through ephemeral_disk)."
        ),
        block("update", attrs={"max_parallel": 1, "canary": 0}),
    ]


def restart_and_reschedule() -> list[Item]:
    return [
        block("restart", attrs={"attempts": 3, "interval": "5m", "delay": "15s", "mode": "delay"}),
        block(
            "reschedule",
            attrs={
                "delay": duration(PRODUCTION.restart_delay_s),
                "delay_function": "exponential",
                "max_delay": duration(PRODUCTION.restart_max_delay_s),
                "unlimited": True,
            },
        ),
    ]


def sticky_disk(size_mb: int, what: str) -> list[Item]:
    return [
        Comment(f"{what} survives restarts and deployments, and moves with the allocation."),
        block("ephemeral_disk", attrs={"size": size_mb, "sticky": True, "migrate": True}),
    ]


def network(*ports: str) -> Block:
    return block("network", items=[block("port", name) for name in ports])


def http_check(name: str, port: str, path: str, *, grace: str = "30s", timeout: str = CHECK_TIMEOUT) -> Block:
    return block(
        "check",
        attrs={
            "name": name,
            "type": "http",
            "port": port,
            "protocol": "http",
            "path": path,
            "interval": CHECK_INTERVAL,
            "timeout": timeout,
        },
        items=[block("check_restart", attrs={"limit": 3, "grace": grace})],
    )


def consul_service(name: str, port: str, tags: list[str], checks: list[Block], meta: Mapping[str, Value]) -> Block:
    return block(
        "service",
        attrs={"name": name, "port": port, "provider": "consul", "tags": tags},
        items=[block("meta", attrs=meta), *checks],
    )


def vault_block(role: str, change_mode: str = "signal") -> Block:
    attrs: dict[str, Value] = {"role": role, "env": False, "change_mode": change_mode}
    if change_mode == "signal":
        attrs["change_signal"] = "SIGHUP"
    return block("vault", attrs=attrs)


def template(
    data: Value,
    destination: str | Expr,
    *,
    change_mode: str = "signal",
    owner: tuple[str, str] | None = None,
    perms: str | None = None,
    env: bool = False,
    delimiters: tuple[str, str] | None = None,
) -> Block:
    attrs: dict[str, Value] = {"data": data, "destination": destination}
    if delimiters:
        attrs |= {"left_delimiter": delimiters[0], "right_delimiter": delimiters[1]}
    if perms:
        attrs["perms"] = perms
    if owner:
        attrs |= {"uid": Expr(owner[0]), "gid": Expr(owner[1])}
    if env:
        attrs["env"] = True
    attrs["change_mode"] = change_mode
    if change_mode == "signal":
        attrs["change_signal"] = "SIGHUP"
    return block("template", attrs=attrs)


def pki_issue(request: PkiRequest, ttl_var: str) -> str:
    """The consul-template opening of one Vault PKI issue call (closed by ``{{ end }}``).

    Identical arguments in several templates are one consul-template dependency: the certificate,
    key and CA files come from the same issue call. No node address among the IP SANs: callers pin
    the service's DNS name, and the PKI role refuses node addresses.
    """
    args = [
        f'"pki_int/issue/{request.role}"',
        f'"common_name={request.common_name}"',
        f'"alt_names={",".join(request.alt_names)}"',
    ]
    if request.ip_sans:
        args.append(f'"ip_sans={",".join(request.ip_sans)}"')
    args.append(f'"ttl=${{var.{ttl_var}}}"')
    return "{{ with secret " + " ".join(args) + " }}"


CA_CHAIN = (
    "{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}"
)


def tls_templates(issue: str, owner: tuple[str, str]) -> list[Item]:
    """Certificate, key and CA from ONE issue call, re-issued before expiry; SIGHUP reloads them.
    Owned by the image's user, or a non-root process could not read them."""
    return [
        Comment(
            "Certificate, key and CA from ONE Vault PKI issue call (identical arguments are one\n"
            "consul-template dependency), re-issued before expiry; SIGHUP reloads them. Owned by the\n"
            "image's non-root user, or the process could not read them."
        ),
        template(issue + "{{ .Data.certificate }}{{ end }}", "secrets/tls/cert.pem", owner=owner, perms="0600"),
        template(issue + "{{ .Data.private_key }}{{ end }}", "secrets/tls/key.pem", owner=owner, perms="0600"),
        template(issue + CA_CHAIN + "{{ end }}", "secrets/tls/ca.pem", owner=owner, perms="0640"),
    ]


def resources(cpu: int, memory: int) -> Block:
    return block("resources", attrs={"cpu": cpu, "memory": memory})


def go_task_memory(cpu: int, memory: int) -> list[Block]:
    """A Go program's resources and the GOMEMLIMIT that keeps its heap under them (``memory_limits``)."""
    return [block("env", attrs=dict(cluster_environment(memory))), resources(cpu, memory)]


def job_meta(extra: Mapping[str, Value] | None = None) -> Block:
    return block("meta", attrs={"project": "firedrill", **(extra or {})})


def attrs(**values: Value) -> list[Item]:
    return [Attr(k, v) for k, v in values.items()]

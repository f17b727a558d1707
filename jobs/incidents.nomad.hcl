# incidents: Alertmanager webhook receiver and incident store (one writer: SQLite on a sticky disk).
#
# Deployed by `make deploy` (scripts/cluster/deploy.py), which parses this file through the Nomad
# API with the variables below. Secrets (TLS material) are files rendered from
# Vault with the task's workload identity; nothing secret is in the job or its environment.

variable "datacenters" {
  type        = list(string)
  description = "Nomad datacenters the job may run in."
  default     = ["dc1"]
}

variable "image" {
  type        = string
  description = "Firedrill services image, pinned to a version tag (never latest)."
  default     = "firedrill/services:0.1.0"

  validation {
    condition     = !endswith(var.image, ":latest") && length(regexall(":[A-Za-z0-9._-]+$", var.image)) > 0
    error_message = "The image must carry an explicit version tag other than latest."
  }
}

variable "service_uid" {
  type        = number
  description = "User id the services image runs as (Dockerfile USER 10001:10001): owner of the files rendered into secrets/."
  default     = 10001
}

variable "service_gid" {
  type        = number
  description = "Group id the services image runs as (Dockerfile USER 10001:10001): group of the files rendered into secrets/."
  default     = 10001
}

variable "profile" {
  type        = string
  description = "Timing profile: production on a cluster, drill for fast rehearsals."
  default     = "production"

  validation {
    condition     = contains(["drill", "production"], var.profile)
    error_message = "The profile must be drill or production."
  }
}

variable "log_level" {
  type        = string
  description = "Service log level."
  default     = "INFO"
}

variable "trace_sample_ratio" {
  type        = string
  description = "Share (0..1) of new requests an edge service starts a trace for (FIREDRILL_TRACE_RATIO); internal services only continue sampled traces."
  default     = "0.1"

  validation {
    condition     = can(regex("^(0(\\.[0-9]+)?|1(\\.0+)?)$", var.trace_sample_ratio))
    error_message = "The trace ratio must be a number from 0 to 1, such as 0.1."
  }
}

variable "cert_ttl" {
  type        = string
  description = "Lifetime of the service certificate issued by Vault PKI (pki_int)."
  default     = "72h"
}

variable "auto_promote" {
  type        = bool
  description = "Promote healthy canaries without waiting for the canary analysis (make deploy promotes them itself)."
  default     = false
}

variable "incidents_count" {
  type        = number
  description = "Instances of incidents."
  default     = 1

  validation {
    condition     = var.incidents_count >= 1 && var.incidents_count <= 20
    error_message = "Between 1 and 20 instances."
  }
}

locals {
  pki_issue_incidents = "{{ with secret \"pki_int/issue/incidents\" \"common_name=incidents.service.consul\" \"alt_names=localhost\" (printf \"ip_sans=127.0.0.1,%s\" (env \"NOMAD_IP_http\")) \"ttl=${var.cert_ttl}\" }}"
}

job "incidents" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    project = "firedrill"
  }

  update {
    max_parallel      = 1
    canary            = 1
    auto_revert       = true
    auto_promote      = var.auto_promote
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
  }

  group "incidents" {
    count = var.incidents_count

    network {
      port "http" {}
      port "metrics" {}
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "10m"
      unlimited      = true
    }

    # The incident store survives restarts and moves with the allocation.
    ephemeral_disk {
      size    = 300
      sticky  = true
      migrate = true
    }

    # "http" serves mTLS (Alertmanager presents its `alertmanager` certificate); "metrics" serves
    # /metrics and /health in plain HTTP, so scrapes and Consul's check work when certificates or
    # Vault do not.
    service {
      name     = "incidents"
      port     = "http"
      provider = "consul"
      tags     = ["http", "firedrill"]

      meta {
        protocol       = "http"
        metrics_path   = "/metrics"
        metrics_port   = "${NOMAD_HOST_PORT_metrics}"
        metrics_scheme = "http"
      }

      check {
        name     = "incidents-health"
        type     = "http"
        port     = "metrics"
        protocol = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "incidents" {
      driver = "docker"

      config {
        image   = var.image
        command = "python"
        args    = ["-m", "services.incidents"]
        ports   = ["http", "metrics"]
      }

      vault {
        role          = "firedrill-incidents"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      env {
        FIREDRILL_BIND_HOST      = "0.0.0.0"
        FIREDRILL_DISCOVERY      = "consul"
        FIREDRILL_SELF_REGISTER  = "false"
        CONSUL_HTTP_ADDR         = "http://${attr.unique.network.ip-address}:8500"
        FIREDRILL_PROFILE        = var.profile
        FIREDRILL_LOG_LEVEL      = var.log_level
        FIREDRILL_TRACE_RATIO    = var.trace_sample_ratio
        FIREDRILL_TLS_CERT_FILE  = "${NOMAD_SECRETS_DIR}/tls/cert.pem"
        FIREDRILL_TLS_KEY_FILE   = "${NOMAD_SECRETS_DIR}/tls/key.pem"
        FIREDRILL_TLS_CA_FILE    = "${NOMAD_SECRETS_DIR}/tls/ca.pem"
        FIREDRILL_PORT           = "${NOMAD_PORT_http}"
        FIREDRILL_ADVERTISE_HOST = "${NOMAD_IP_http}"
        FIREDRILL_METRICS_PORT   = "${NOMAD_PORT_metrics}"
        FIREDRILL_DATA_DIR       = "${NOMAD_ALLOC_DIR}/data"
      }

      # Certificate, key and CA come from ONE Vault PKI issue call (identical arguments in the three
      # templates are one consul-template dependency), re-issued before expiry; SIGHUP reloads them.
      # Owned by var.service_uid/service_gid, the image's non-root user, or the service could not read them.
      template {
        data          = "${local.pki_issue_incidents}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_incidents}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_incidents}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
        destination   = "secrets/tls/ca.pem"
        perms         = "0640"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      # Upstream addresses from Consul: the OTLP collector (restart to pick up a new address).
      template {
        data        = <<-EOT
          {{ with service "otel-collector" }}{{ with index . 0 }}OTEL_EXPORTER_OTLP_ENDPOINT=http://{{ .Address }}:{{ .Port }}{{ end }}{{ end }}
        EOT
        destination = "local/upstreams.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data        = <<-EOT
          {{ with service "prometheus" }}{{ with index . 0 }}FIREDRILL_PROMETHEUS_URL=http://{{ .Address }}:{{ .Port }}{{ end }}{{ end }}
        EOT
        destination = "local/prometheus.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 200
        memory = 256
      }

      kill_timeout = "20s"
    }
  }
}

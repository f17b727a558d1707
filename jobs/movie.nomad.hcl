# movie application (seed 003): metadata, rating, the movie gateway and auth, one group each.
#
# Deployed by `make deploy` (scripts/cluster/deploy.py), which parses this file through the Nomad
# API with the variables below. Secrets (TLS material, JWT key) are files rendered from
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

variable "metadata_count" {
  type        = number
  description = "Instances of metadata."
  default     = 1

  validation {
    condition     = var.metadata_count >= 1 && var.metadata_count <= 20
    error_message = "Between 1 and 20 instances."
  }
}

variable "rating_count" {
  type        = number
  description = "Instances of rating."
  default     = 1

  validation {
    condition     = var.rating_count >= 1 && var.rating_count <= 20
    error_message = "Between 1 and 20 instances."
  }
}

variable "movie_count" {
  type        = number
  description = "Instances of movie."
  default     = 2

  validation {
    condition     = var.movie_count >= 1 && var.movie_count <= 20
    error_message = "Between 1 and 20 instances."
  }
}

variable "auth_count" {
  type        = number
  description = "Instances of auth."
  default     = 2

  validation {
    condition     = var.auth_count >= 1 && var.auth_count <= 20
    error_message = "Between 1 and 20 instances."
  }
}

locals {
  pki_issue_metadata = "{{ with secret \"pki_int/issue/metadata\" \"common_name=metadata.service.consul\" \"alt_names=localhost\" (printf \"ip_sans=127.0.0.1,%s\" (env \"NOMAD_IP_grpc\")) \"ttl=${var.cert_ttl}\" }}"
  pki_issue_rating = "{{ with secret \"pki_int/issue/rating\" \"common_name=rating.service.consul\" \"alt_names=localhost\" (printf \"ip_sans=127.0.0.1,%s\" (env \"NOMAD_IP_grpc\")) \"ttl=${var.cert_ttl}\" }}"
  pki_issue_movie = "{{ with secret \"pki_int/issue/movie\" \"common_name=movie.service.consul\" \"alt_names=localhost\" (printf \"ip_sans=127.0.0.1,%s\" (env \"NOMAD_IP_grpc\")) \"ttl=${var.cert_ttl}\" }}"
  pki_issue_auth = "{{ with secret \"pki_int/issue/auth\" \"common_name=auth.service.consul\" \"alt_names=localhost\" (printf \"ip_sans=127.0.0.1,%s\" (env \"NOMAD_IP_grpc\")) \"ttl=${var.cert_ttl}\" }}"
}

job "movie" {
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

  group "metadata" {
    count = var.metadata_count

    network {
      port "grpc" {}
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

    # The metadata database survives restarts and moves with the allocation.
    ephemeral_disk {
      size    = 300
      sticky  = true
      migrate = true
    }

    service {
      name     = "metadata"
      port     = "grpc"
      provider = "consul"
      tags     = ["grpc", "firedrill"]

      meta {
        protocol       = "grpc"
        metrics_path   = "/metrics"
        metrics_port   = "${NOMAD_HOST_PORT_metrics}"
        metrics_scheme = "http"
      }

      # Health on the plain metrics port (it includes "is the gRPC server serving"). No gRPC check on
      # the mTLS port: Consul has no pki_int client certificate, and an expired certificate must not
      # turn into failing checks and restarts while CertificateExpiringSoon is what should fire.
      check {
        name     = "metadata-health"
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

    task "metadata" {
      driver = "docker"

      config {
        image   = var.image
        command = "python"
        args    = ["-m", "services.metadata"]
        ports   = ["grpc", "metrics"]
      }

      vault {
        role          = "firedrill-metadata"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      env {
        FIREDRILL_BIND_HOST            = "0.0.0.0"
        FIREDRILL_DISCOVERY            = "consul"
        FIREDRILL_SELF_REGISTER        = "false"
        CONSUL_HTTP_ADDR               = "http://${attr.unique.network.ip-address}:8500"
        FIREDRILL_PROFILE              = var.profile
        FIREDRILL_LOG_LEVEL            = var.log_level
        FIREDRILL_TRACE_RATIO          = var.trace_sample_ratio
        FIREDRILL_TLS_CERT_FILE        = "${NOMAD_SECRETS_DIR}/tls/cert.pem"
        FIREDRILL_TLS_KEY_FILE         = "${NOMAD_SECRETS_DIR}/tls/key.pem"
        FIREDRILL_TLS_CA_FILE          = "${NOMAD_SECRETS_DIR}/tls/ca.pem"
        FIREDRILL_PORT                 = "${NOMAD_PORT_grpc}"
        FIREDRILL_ADVERTISE_HOST       = "${NOMAD_IP_grpc}"
        FIREDRILL_METRICS_PORT         = "${NOMAD_PORT_metrics}"
        FIREDRILL_DATA_DIR             = "${NOMAD_ALLOC_DIR}/data"
        FIREDRILL_JWT_PUBLIC_KEYS_FILE = "${NOMAD_SECRETS_DIR}/jwt_public_keys.json"
      }

      # Certificate, key and CA come from ONE Vault PKI issue call (identical arguments in the three
      # templates are one consul-template dependency), re-issued before expiry; SIGHUP reloads them.
      # Owned by var.service_uid/service_gid, the image's non-root user, or the service could not read them.
      template {
        data          = "${local.pki_issue_metadata}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_metadata}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_metadata}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
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

      # Verification keys only (no private key): tokens issued by auth are checked locally.
      template {
        data          = <<-EOT
          {{ with secret "secret/data/firedrill/public/jwt" }}{{ .Data.data | toJSON }}{{ end }}
        EOT
        destination   = "secrets/jwt_public_keys.json"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      resources {
        cpu    = 200
        memory = 256
      }

      kill_timeout = "20s"
    }
  }

  group "rating" {
    count = var.rating_count

    network {
      port "grpc" {}
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

    # The ratings database survives restarts and moves with the allocation.
    ephemeral_disk {
      size    = 300
      sticky  = true
      migrate = true
    }

    service {
      name     = "rating"
      port     = "grpc"
      provider = "consul"
      tags     = ["grpc", "firedrill"]

      meta {
        protocol       = "grpc"
        metrics_path   = "/metrics"
        metrics_port   = "${NOMAD_HOST_PORT_metrics}"
        metrics_scheme = "http"
      }

      # Health on the plain metrics port (it includes "is the gRPC server serving"). No gRPC check on
      # the mTLS port: Consul has no pki_int client certificate, and an expired certificate must not
      # turn into failing checks and restarts while CertificateExpiringSoon is what should fire.
      check {
        name     = "rating-health"
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

    task "rating" {
      driver = "docker"

      config {
        image   = var.image
        command = "python"
        args    = ["-m", "services.rating"]
        ports   = ["grpc", "metrics"]
      }

      vault {
        role          = "firedrill-rating"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      env {
        FIREDRILL_BIND_HOST            = "0.0.0.0"
        FIREDRILL_DISCOVERY            = "consul"
        FIREDRILL_SELF_REGISTER        = "false"
        CONSUL_HTTP_ADDR               = "http://${attr.unique.network.ip-address}:8500"
        FIREDRILL_PROFILE              = var.profile
        FIREDRILL_LOG_LEVEL            = var.log_level
        FIREDRILL_TRACE_RATIO          = var.trace_sample_ratio
        FIREDRILL_TLS_CERT_FILE        = "${NOMAD_SECRETS_DIR}/tls/cert.pem"
        FIREDRILL_TLS_KEY_FILE         = "${NOMAD_SECRETS_DIR}/tls/key.pem"
        FIREDRILL_TLS_CA_FILE          = "${NOMAD_SECRETS_DIR}/tls/ca.pem"
        FIREDRILL_PORT                 = "${NOMAD_PORT_grpc}"
        FIREDRILL_ADVERTISE_HOST       = "${NOMAD_IP_grpc}"
        FIREDRILL_METRICS_PORT         = "${NOMAD_PORT_metrics}"
        FIREDRILL_DATA_DIR             = "${NOMAD_ALLOC_DIR}/data"
        FIREDRILL_JWT_PUBLIC_KEYS_FILE = "${NOMAD_SECRETS_DIR}/jwt_public_keys.json"
      }

      # Certificate, key and CA come from ONE Vault PKI issue call (identical arguments in the three
      # templates are one consul-template dependency), re-issued before expiry; SIGHUP reloads them.
      # Owned by var.service_uid/service_gid, the image's non-root user, or the service could not read them.
      template {
        data          = "${local.pki_issue_rating}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_rating}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_rating}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
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

      # Verification keys only (no private key): tokens issued by auth are checked locally.
      template {
        data          = <<-EOT
          {{ with secret "secret/data/firedrill/public/jwt" }}{{ .Data.data | toJSON }}{{ end }}
        EOT
        destination   = "secrets/jwt_public_keys.json"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      resources {
        cpu    = 200
        memory = 256
      }

      kill_timeout = "20s"
    }
  }

  group "movie" {
    count = var.movie_count

    network {
      port "grpc" {}
      port "metrics" {}
      port "http" {}
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

    service {
      name     = "movie"
      port     = "grpc"
      provider = "consul"
      tags     = ["grpc", "firedrill"]

      meta {
        protocol       = "grpc"
        metrics_path   = "/metrics"
        metrics_port   = "${NOMAD_HOST_PORT_metrics}"
        metrics_scheme = "http"
        http_port      = "${NOMAD_HOST_PORT_http}"
      }


      check {
        name     = "movie-health"
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

    task "movie" {
      driver = "docker"

      config {
        image   = var.image
        command = "python"
        args    = ["-m", "services.movie"]
        ports   = ["grpc", "metrics", "http"]
      }

      vault {
        role          = "firedrill-movie"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      env {
        FIREDRILL_BIND_HOST            = "0.0.0.0"
        FIREDRILL_DISCOVERY            = "consul"
        FIREDRILL_SELF_REGISTER        = "false"
        CONSUL_HTTP_ADDR               = "http://${attr.unique.network.ip-address}:8500"
        FIREDRILL_PROFILE              = var.profile
        FIREDRILL_LOG_LEVEL            = var.log_level
        FIREDRILL_TRACE_RATIO          = var.trace_sample_ratio
        FIREDRILL_TLS_CERT_FILE        = "${NOMAD_SECRETS_DIR}/tls/cert.pem"
        FIREDRILL_TLS_KEY_FILE         = "${NOMAD_SECRETS_DIR}/tls/key.pem"
        FIREDRILL_TLS_CA_FILE          = "${NOMAD_SECRETS_DIR}/tls/ca.pem"
        FIREDRILL_PORT                 = "${NOMAD_PORT_grpc}"
        FIREDRILL_ADVERTISE_HOST       = "${NOMAD_IP_grpc}"
        FIREDRILL_METRICS_PORT         = "${NOMAD_PORT_metrics}"
        FIREDRILL_HTTP_PORT            = "${NOMAD_PORT_http}"
        FIREDRILL_JWT_PUBLIC_KEYS_FILE = "${NOMAD_SECRETS_DIR}/jwt_public_keys.json"
      }

      # Certificate, key and CA come from ONE Vault PKI issue call (identical arguments in the three
      # templates are one consul-template dependency), re-issued before expiry; SIGHUP reloads them.
      # Owned by var.service_uid/service_gid, the image's non-root user, or the service could not read them.
      template {
        data          = "${local.pki_issue_movie}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_movie}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_movie}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
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

      # Verification keys only (no private key): tokens issued by auth are checked locally.
      template {
        data          = <<-EOT
          {{ with secret "secret/data/firedrill/public/jwt" }}{{ .Data.data | toJSON }}{{ end }}
        EOT
        destination   = "secrets/jwt_public_keys.json"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      resources {
        cpu    = 200
        memory = 256
      }

      kill_timeout = "20s"
    }
  }

  group "auth" {
    count = var.auth_count

    network {
      port "grpc" {}
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

    service {
      name     = "auth"
      port     = "grpc"
      provider = "consul"
      tags     = ["grpc", "firedrill"]

      meta {
        protocol       = "grpc"
        metrics_path   = "/metrics"
        metrics_port   = "${NOMAD_HOST_PORT_metrics}"
        metrics_scheme = "http"
      }

      # Health on the plain metrics port (it includes "is the gRPC server serving"). No gRPC check on
      # the mTLS port: Consul has no pki_int client certificate, and an expired certificate must not
      # turn into failing checks and restarts while CertificateExpiringSoon is what should fire.
      check {
        name     = "auth-health"
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

    task "auth" {
      driver = "docker"

      config {
        image   = var.image
        command = "python"
        args    = ["-m", "services.auth"]
        ports   = ["grpc", "metrics"]
      }

      vault {
        role          = "firedrill-auth"
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
        FIREDRILL_PORT           = "${NOMAD_PORT_grpc}"
        FIREDRILL_ADVERTISE_HOST = "${NOMAD_IP_grpc}"
        FIREDRILL_METRICS_PORT   = "${NOMAD_PORT_metrics}"
        FIREDRILL_JWT_KEY_FILE   = "${NOMAD_SECRETS_DIR}/jwt_key.json"
      }

      # Certificate, key and CA come from ONE Vault PKI issue call (identical arguments in the three
      # templates are one consul-template dependency), re-issued before expiry; SIGHUP reloads them.
      # Owned by var.service_uid/service_gid, the image's non-root user, or the service could not read them.
      template {
        data          = "${local.pki_issue_auth}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_auth}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_auth}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
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

      # The signing keys (active and previous, as JSON) from KV v2; SIGHUP reloads them after rotation.
      template {
        data          = <<-EOT
          {{ with secret "secret/data/firedrill/auth/jwt" }}{{ .Data.data | toJSON }}{{ end }}
        EOT
        destination   = "secrets/jwt_key.json"
        perms         = "0600"
        uid           = var.service_uid
        gid           = var.service_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      resources {
        cpu    = 200
        memory = 256
      }

      kill_timeout = "20s"
    }
  }
}

# monitoring: Prometheus, Alertmanager and Grafana, configured from the repository.
#
# The configuration is NOT pasted here. `make deploy` (scripts/cluster/deploy.py) reads the files
# the monitoring generator writes for the production profile and passes them as map variables
# (relative path -> content); `dynamic "template"` blocks write each one into the task:
#
#   prometheus_files    <- prometheus/generated/production/prometheus-consul.yml (consul_sd_configs) and rules/
#   alertmanager_files  <- alertmanager/generated/production/alertmanager.yml and alertmanager/templates/
#   grafana_dashboards  <- grafana/dashboards/**/*.json
#
# Why variables and not file() or artifact: the Nomad HTTP API parses jobs without filesystem
# access (file() only works in the CLI), and an artifact would need the repository published
# somewhere the clients can download from. Variables keep one source of truth (the repo), work the
# same through the API and through `nomad job run -var-file` (deploy --write-var-files), and a
# change of a rule file is a new job version that Nomad rolls out and can revert.
#
# Delimiters: rule annotations and Alertmanager templates use {{ }} themselves, so static files
# are copied with delimiters that never occur. alertmanager.yml is rendered with [[ ]] so the
# incident receiver's address comes from Consul (scripts/cluster/jobspec.py, cluster_alertmanager,
# rewrites the generated URL into
#   [[ with service "incidents" ]][[ with index . 0 ]]https://[[ .Address ]]:[[ .Port ]][[ end ]][[ end ]]/alerts)
# and gives that webhook a tls_config with the client certificate this job renders for the
# `alertmanager` identity (pki_int/issue/alertmanager): incidents only answers callers with a
# platform certificate (mTLS), and Alertmanager verifies incidents' certificate with the same CA.

variable "datacenters" {
  type        = list(string)
  description = "Nomad datacenters the job may run in."
  default     = ["dc1"]
}

variable "prometheus_image" {
  type        = string
  description = "Prometheus image, pinned."
  default     = "prom/prometheus:v2.53.1"
}

variable "alertmanager_image" {
  type        = string
  description = "Alertmanager image, pinned."
  default     = "prom/alertmanager:v0.27.0"
}

variable "alertmanager_uid" {
  type        = number
  description = "User id alertmanager_image runs as (prom/alertmanager: nobody, 65534): owner of its rendered certificate and key."
  default     = 65534
}

variable "alertmanager_gid" {
  type        = number
  description = "Group id alertmanager_image runs as (prom/alertmanager: nobody, 65534)."
  default     = 65534
}

variable "grafana_image" {
  type        = string
  description = "Grafana image, pinned."
  default     = "grafana/grafana:11.1.0"
}

variable "grafana_uid" {
  type        = number
  description = "User id grafana_image runs as (grafana/grafana: grafana, 472): owner of the rendered admin password."
  default     = 472
}

variable "grafana_gid" {
  type        = number
  description = "Group id grafana_image runs as (grafana/grafana: root group, 0); the password is 0600, so the group gets no access."
  default     = 0
}

variable "profile" {
  type        = string
  description = "Timing profile whose generated files are passed in (informational, shown in job meta)."
  default     = "production"

  validation {
    condition     = contains(["drill", "production"], var.profile)
    error_message = "The profile must be drill or production."
  }
}

variable "prometheus_files" {
  type        = map(string)
  description = "prometheus-consul.yml and rules/ of prometheus/generated/<profile>/, by relative path."
  default     = {}
}

variable "alertmanager_files" {
  type        = map(string)
  description = "alertmanager.yml (cluster-adapted) and templates/*.tmpl, by relative path."
  default     = {}
}

variable "grafana_dashboards" {
  type        = map(string)
  description = "Dashboard JSON files of grafana/dashboards/, by relative path."
  default     = {}
}

variable "cert_ttl" {
  type        = string
  description = "Lifetime of Alertmanager's client certificate issued by Vault PKI (pki_int/issue/alertmanager)."
  default     = "72h"
}

variable "prometheus_retention" {
  type        = string
  description = "How long Prometheus keeps samples."
  default     = "15d"
}

locals {
  # Delimiters that never appear in the files, so consul-template copies them verbatim.
  verbatim_left  = "<<FIREDRILL-VERBATIM<<"
  verbatim_right = ">>FIREDRILL-VERBATIM>>"

  # Alertmanager's client identity for the mTLS webhook to incidents: a client-only PKI role (no
  # localhost or IP SANs), the same CN and SAN the local Vault agent asks for.
  pki_issue_alertmanager = "{{ with secret \"pki_int/issue/alertmanager\" \"common_name=alertmanager\" \"alt_names=alertmanager.service.consul\" \"ttl=${var.cert_ttl}\" }}"
}

job "monitoring" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    project = "firedrill"
    profile = var.profile
  }

  update {
    max_parallel      = 1
    canary            = 1
    auto_revert       = true
    auto_promote      = true
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
  }

  group "prometheus" {
    count = 1

    network {
      port "http" {}
    }

    # The TSDB survives restarts and follows the allocation when it moves.
    ephemeral_disk {
      size    = 2000
      sticky  = true
      migrate = true
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
      name     = "prometheus"
      port     = "http"
      provider = "consul"
      tags     = ["monitoring"]

      meta {
        metrics_path = "/metrics"
        metrics_port = "${NOMAD_HOST_PORT_http}"
      }

      check {
        name     = "prometheus-ready"
        type     = "http"
        path     = "/-/ready"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "60s"
        }
      }
    }

    task "prometheus" {
      driver = "docker"

      config {
        image = var.prometheus_image
        # Host networking: consul_sd_configs reaches the node's Consul agent on localhost:8500.
        network_mode = "host"
        args = [
          "--config.file=/local/prometheus/prometheus-consul.yml",
          "--storage.tsdb.path=/alloc/data/prometheus",
          "--storage.tsdb.retention.time=${var.prometheus_retention}",
          "--web.listen-address=0.0.0.0:${NOMAD_PORT_http}",
          "--web.enable-lifecycle",
        ]
      }

      dynamic "template" {
        for_each = var.prometheus_files
        content {
          data            = template.value
          destination     = "local/prometheus/${template.key}"
          left_delimiter  = local.verbatim_left
          right_delimiter = local.verbatim_right
          change_mode     = "signal"
          change_signal   = "SIGHUP"
        }
      }

      resources {
        cpu    = 500
        memory = 1024
      }
    }
  }

  group "alertmanager" {
    # One Alertmanager: its gossip clustering is switched off (no peers to dedupe with).
    count = 1

    network {
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
      name     = "alertmanager"
      port     = "http"
      provider = "consul"
      tags     = ["monitoring"]

      meta {
        metrics_path = "/metrics"
        metrics_port = "${NOMAD_HOST_PORT_http}"
      }

      check {
        name     = "alertmanager-ready"
        type     = "http"
        path     = "/-/ready"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "60s"
        }
      }
    }

    task "alertmanager" {
      driver = "docker"

      config {
        image        = var.alertmanager_image
        network_mode = "host"
        args = [
          "--config.file=/local/alertmanager/alertmanager.yml",
          "--storage.path=/alloc/data/alertmanager",
          "--web.listen-address=0.0.0.0:${NOMAD_PORT_http}",
          "--cluster.listen-address=",
        ]
      }

      # The workload identity that may issue pki_int/issue/alertmanager (make vault-bootstrap).
      vault {
        role          = "firedrill-alertmanager"
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      # Client certificate, key and CA chain for the webhook to incidents, from ONE Vault PKI issue
      # call (identical arguments: one consul-template dependency), re-issued before expiry. SIGHUP
      # makes Alertmanager reload its configuration, and with it the webhook's TLS client. The paths
      # are the tls_config that jobspec.cluster_alertmanager writes into alertmanager.yml (/secrets is
      # this task's secrets/). Owned by var.alertmanager_uid/gid: the image does not run as root.
      template {
        data          = "${local.pki_issue_alertmanager}{{ .Data.certificate }}{{ end }}"
        destination   = "secrets/tls/cert.pem"
        perms         = "0600"
        uid           = var.alertmanager_uid
        gid           = var.alertmanager_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_alertmanager}{{ .Data.private_key }}{{ end }}"
        destination   = "secrets/tls/key.pem"
        perms         = "0600"
        uid           = var.alertmanager_uid
        gid           = var.alertmanager_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      template {
        data          = "${local.pki_issue_alertmanager}{{ if .Data.ca_chain }}{{ range .Data.ca_chain }}{{ . }}\n{{ end }}{{ else }}{{ .Data.issuing_ca }}{{ end }}{{ end }}"
        destination   = "secrets/tls/ca.pem"
        perms         = "0640"
        uid           = var.alertmanager_uid
        gid           = var.alertmanager_gid
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      # Only the routing config is rendered with [[ ]] (Consul lookups); templates stay verbatim.
      dynamic "template" {
        for_each = { for path, body in var.alertmanager_files : path => body if path == "alertmanager.yml" }
        content {
          data            = template.value
          destination     = "local/alertmanager/${template.key}"
          left_delimiter  = "[["
          right_delimiter = "]]"
          change_mode     = "signal"
          change_signal   = "SIGHUP"
        }
      }

      dynamic "template" {
        for_each = { for path, body in var.alertmanager_files : path => body if path != "alertmanager.yml" }
        content {
          data            = template.value
          destination     = "local/alertmanager/${template.key}"
          left_delimiter  = local.verbatim_left
          right_delimiter = local.verbatim_right
          change_mode     = "signal"
          change_signal   = "SIGHUP"
        }
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  group "grafana" {
    count = 1

    network {
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
      name     = "grafana"
      port     = "http"
      provider = "consul"
      tags     = ["monitoring"]

      meta {
        metrics_path = "/metrics"
        metrics_port = "${NOMAD_HOST_PORT_http}"
      }

      check {
        name     = "grafana-health"
        type     = "http"
        path     = "/api/health"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "60s"
        }
      }
    }

    task "grafana" {
      driver = "docker"

      config {
        image = var.grafana_image
        ports = ["http"]
      }

      vault {
        role        = "firedrill-grafana"
        change_mode = "restart"
      }

      env {
        GF_SERVER_HTTP_PORT                   = "${NOMAD_PORT_http}"
        GF_PATHS_PROVISIONING                 = "/local/grafana/provisioning"
        GF_PATHS_DATA                         = "/alloc/data/grafana"
        GF_SECURITY_ADMIN_PASSWORD__FILE      = "/secrets/grafana_admin_password"
        GF_AUTH_ANONYMOUS_ENABLED             = "false"
        GF_USERS_ALLOW_SIGN_UP                = "false"
        GF_ANALYTICS_REPORTING_ENABLED        = "false"
        GF_ANALYTICS_CHECK_FOR_UPDATES        = "false"
        GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES = "false"
      }

      # The admin password lives in Vault KV; Grafana reads it at start, as var.grafana_uid (not root).
      template {
        data          = <<-EOT
          {{ with secret "secret/data/firedrill/grafana" }}{{ .Data.data.admin_password }}{{ end }}
        EOT
        destination = "secrets/grafana_admin_password"
        perms       = "0600"
        uid         = var.grafana_uid
        gid         = var.grafana_gid
        change_mode = "restart"
      }

      # Datasources point at whatever Consul says Prometheus, Alertmanager and Jaeger are.
      template {
        data        = <<-EOT
          apiVersion: 1
          datasources:
          {{- with service "prometheus" }}{{ with index . 0 }}
            - name: Prometheus
              uid: prometheus
              type: prometheus
              access: proxy
              isDefault: true
              url: http://{{ .Address }}:{{ .Port }}
              jsonData:
                exemplarTraceIdDestinations:
                  - name: trace_id
                    datasourceUid: jaeger
          {{- end }}{{ end }}
          {{- with service "alertmanager" }}{{ with index . 0 }}
            - name: Alertmanager
              uid: alertmanager
              type: alertmanager
              access: proxy
              url: http://{{ .Address }}:{{ .Port }}
              jsonData:
                implementation: prometheus
          {{- end }}{{ end }}
          {{- with service "jaeger" }}{{ with index . 0 }}
            - name: Jaeger
              uid: jaeger
              type: jaeger
              access: proxy
              url: http://{{ .Address }}:{{ .Port }}
          {{- end }}{{ end }}
        EOT
        destination = "local/grafana/provisioning/datasources/firedrill.yaml"
        change_mode = "restart"
      }

      template {
        data        = <<-EOT
          apiVersion: 1
          providers:
            - name: firedrill
              folder: Firedrill
              type: file
              disableDeletion: true
              options:
                path: /local/grafana/dashboards
                foldersFromFilesStructure: false
        EOT
        destination = "local/grafana/provisioning/dashboards/firedrill.yaml"
        change_mode = "restart"
      }

      dynamic "template" {
        for_each = var.grafana_dashboards
        content {
          data            = template.value
          destination     = "local/grafana/dashboards/${replace(template.key, "/", "-")}"
          left_delimiter  = local.verbatim_left
          right_delimiter = local.verbatim_right
          change_mode     = "noop"
        }
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}

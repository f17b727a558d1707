# tracing: an OpenTelemetry collector in front of Jaeger.
#
# Services send OTLP to the collector (they find it in Consul as "otel-collector"); the collector
# batches, limits memory, and forwards to Jaeger's OTLP receiver, whose address it also takes from
# Consul. Jaeger keeps traces in memory: a drill needs recent traces, not an archive.

variable "datacenters" {
  type        = list(string)
  description = "Nomad datacenters the job may run in."
  default     = ["dc1"]
}

variable "collector_image" {
  type        = string
  description = "OpenTelemetry collector (contrib) image, pinned."
  default     = "otel/opentelemetry-collector-contrib:0.104.0"
}

variable "jaeger_image" {
  type        = string
  description = "Jaeger all-in-one image, pinned."
  default     = "jaegertracing/all-in-one:1.59.0"
}

variable "collector_count" {
  type        = number
  description = "Collector instances."
  default     = 2

  validation {
    condition     = var.collector_count >= 1 && var.collector_count <= 10
    error_message = "Between 1 and 10 collectors."
  }
}

variable "jaeger_max_traces" {
  type        = number
  description = "Traces Jaeger keeps in memory."
  default     = 50000
}

job "tracing" {
  datacenters = var.datacenters
  type        = "service"

  meta {
    project = "firedrill"
  }

  update {
    max_parallel      = 1
    canary            = 1
    auto_revert       = true
    auto_promote      = true
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
  }

  group "jaeger" {
    count = 1

    network {
      port "ui" {}
      port "otlp" {}
      port "admin" {}
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
      name     = "jaeger"
      port     = "ui"
      provider = "consul"
      tags     = ["tracing"]

      meta {
        metrics_path = "/metrics"
        metrics_port = "${NOMAD_HOST_PORT_admin}"
        otlp_port    = "${NOMAD_HOST_PORT_otlp}"
      }

      check {
        name     = "jaeger-ui"
        type     = "http"
        port     = "ui"
        path     = "/"
        interval = "10s"
        timeout  = "3s"
      }

      check {
        name     = "jaeger-admin"
        type     = "http"
        port     = "admin"
        path     = "/"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "jaeger" {
      driver = "docker"

      config {
        image = var.jaeger_image
        ports = ["ui", "otlp", "admin"]
        args = [
          "--memory.max-traces=${var.jaeger_max_traces}",
          "--query.http-server.host-port=:${NOMAD_PORT_ui}",
          "--collector.otlp.grpc.host-port=:${NOMAD_PORT_otlp}",
          "--admin.http.host-port=:${NOMAD_PORT_admin}",
        ]
      }

      env {
        COLLECTOR_OTLP_ENABLED = "true"
        SPAN_STORAGE_TYPE      = "memory"
      }

      resources {
        cpu    = 300
        memory = 768
      }
    }
  }

  group "collector" {
    count = var.collector_count

    network {
      port "otlp" {}
      port "health" {}
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
      name     = "otel-collector"
      port     = "otlp"
      provider = "consul"
      tags     = ["tracing", "grpc"]

      meta {
        metrics_path = "/metrics"
        metrics_port = "${NOMAD_HOST_PORT_metrics}"
      }

      check {
        name     = "otel-collector-health"
        type     = "http"
        port     = "health"
        path     = "/"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }
    }

    task "collector" {
      driver = "docker"

      config {
        image = var.collector_image
        ports = ["otlp", "health", "metrics"]
        args  = ["--config=/local/collector.yaml"]
      }

      # Jaeger's OTLP address from Consul; a move of Jaeger restarts the collector onto the new one.
      template {
        data        = <<-EOT
          receivers:
            otlp:
              protocols:
                grpc:
                  endpoint: 0.0.0.0:{{ env "NOMAD_PORT_otlp" }}
          processors:
            memory_limiter:
              check_interval: 1s
              limit_percentage: 80
              spike_limit_percentage: 20
            batch:
              timeout: 2s
          exporters:
            otlp/jaeger:
          {{- with service "jaeger" }}{{ with index . 0 }}
              endpoint: {{ .Address }}:{{ index .ServiceMeta "otlp_port" }}
          {{- end }}{{ end }}
              tls:
                insecure: true
          extensions:
            health_check:
              endpoint: 0.0.0.0:{{ env "NOMAD_PORT_health" }}
          service:
            extensions: [health_check]
            telemetry:
              metrics:
                address: 0.0.0.0:{{ env "NOMAD_PORT_metrics" }}
            pipelines:
              traces:
                receivers: [otlp]
                processors: [memory_limiter, batch]
                exporters: [otlp/jaeger]
        EOT
        destination = "local/collector.yaml"
        change_mode = "restart"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}

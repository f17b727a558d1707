"""The one source of Firedrill's alert and recording rules, Prometheus and Alertmanager config and
Grafana dashboards, built from the service catalog and a timing profile."""

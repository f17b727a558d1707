"""The receiver's own metrics, beside the shared HTTP contract (services.common.metrics)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from services.incidents.models import Status


class IncidentMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        notifications = Counter(
            "incidents_notifications_total",
            "Alertmanager notifications committed to the store, by notification status.",
            ["status"],
            registry=registry,
        )
        self.notifications = {status: notifications.labels(status.value) for status in Status}
        self.rejected = Counter(
            "incidents_notifications_rejected_total",
            "Webhook bodies refused as invalid (400); too-large bodies are counted by the HTTP metrics (413).",
            registry=registry,
        )
        self.repeats = Counter(
            "incidents_notifications_repeated_total",
            "Notifications byte-identical to one already committed, answered without parsing or writing them.",
            registry=registry,
        )
        self.open = Gauge("incidents_open", "Incidents firing now.", registry=registry)
        self.deduplicated = Counter(
            "incidents_alerts_deduplicated_total",
            "Alerts received that were already stored in the same state (repeats and retries).",
            registry=registry,
        )
        self.alerts_stored = Counter(
            "incidents_alerts_stored_total",
            "Alert records created (one per fingerprint and startsAt).",
            registry=registry,
        )
        self.created = Counter("incidents_created_total", "Incidents opened.", registry=registry)
        enrichment = Counter(
            "incidents_enrichment_total",
            "Enrichment attempts by outcome (done, failed, skipped, dropped when the queue was full).",
            ["outcome"],
            registry=registry,
        )
        self.enrichment = {outcome: enrichment.labels(outcome) for outcome in ("done", "failed", "skipped", "dropped")}
        self.enrichment_queue = Gauge(
            "incidents_enrichment_queue_depth", "Incidents waiting for enrichment.", registry=registry
        )
        self.export_pending = Gauge(
            "incidents_export_pending", "Incidents whose JSON file is behind the store.", registry=registry
        )
        self.exported = Counter(
            "incidents_export_files_total",
            "Incident JSON files written (one per incident per export round).",
            registry=registry,
        )
        self.commit_batch = Histogram(
            "incidents_commit_batch_size",
            "Writes committed together in one transaction (group commit).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )

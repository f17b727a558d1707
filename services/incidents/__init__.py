"""incidents: the Alertmanager webhook receiver and incident store (docs/incidents.md)."""

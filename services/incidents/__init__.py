"""incidents: the Alertmanager webhook receiver and incident store (seed 000, issue 4)."""

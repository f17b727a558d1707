"""response: answers hello and hosts the SRE fault-injection endpoints (docs/architecture.md)."""

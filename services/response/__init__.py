"""response: answers hello and hosts the SRE fault-injection endpoints (seed 001)."""

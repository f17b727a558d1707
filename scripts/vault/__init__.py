"""Vault (OpenBao locally): bootstrap, certificate/secret renderer, JWT key rotation, secret scan."""

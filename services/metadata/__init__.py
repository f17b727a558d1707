"""metadata: movie metadata over gRPC, stored in SQLite, with a read cache."""

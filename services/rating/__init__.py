"""rating: movie ratings and their aggregate over gRPC, stored in SQLite."""

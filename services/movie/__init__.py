"""movie: the gateway callers use; fans out to metadata and rating, degrades without rating."""

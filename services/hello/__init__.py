"""hello: the user-facing edge of the hello/response pair."""

"""The Redis feature store: an embedded redis-server and its seeding."""

"""Platform: app factory, config, database, users and auth, CLI. Knows nothing of definitions."""

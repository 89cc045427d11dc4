"""HTTP API and carrier callbacks."""

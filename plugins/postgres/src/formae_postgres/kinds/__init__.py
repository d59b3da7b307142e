"""One module per PostgreSQL resource type."""

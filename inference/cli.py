"""CLI: serve, listen, keys, bench service (filled in by the online-service work)."""

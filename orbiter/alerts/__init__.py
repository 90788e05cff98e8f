"""Alert lifecycle, routing and receivers."""

"""Customer and order imports."""

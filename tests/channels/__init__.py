"""Channel adapters against fake servers that speak the platforms' protocols."""

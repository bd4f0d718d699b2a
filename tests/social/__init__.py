"""Social posts, share kit and social accounts."""

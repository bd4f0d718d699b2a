"""Product photos: uploads checked by content, normalised, stored by content address."""

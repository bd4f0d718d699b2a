"""One message: MJML render, MIME and DKIM."""

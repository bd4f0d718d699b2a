"""Campaign specs: schema, loader, audience, catalog and the campaign CLI."""

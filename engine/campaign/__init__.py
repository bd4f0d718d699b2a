"""Campaign specs: schema, YAML loader with file:line errors, template checks, audience,
catalog, personalization.
"""

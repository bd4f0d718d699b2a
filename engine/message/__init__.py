"""One message: sandboxed templates, MJML render, MIME from a skeleton, DKIM signing.
"""

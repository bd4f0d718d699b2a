"""Shared helpers every concern stands on: crypto, gettext text, Babel formatting, log
redaction.
"""

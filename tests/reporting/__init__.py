"""Pasal 15 reports and their downloads."""

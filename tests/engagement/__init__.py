"""Tracking tokens and bounces."""

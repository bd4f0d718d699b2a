"""Tests of the product photo pipeline (engine.media) and its web edges."""

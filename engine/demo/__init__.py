"""The deterministic demo dataset.
"""

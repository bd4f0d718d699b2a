"""Delivery: runs from specs, batches through the pipeline, control, preview and beat jobs.
"""

"""Social channels: posts planned per product, publishing, inbound webhooks, metrics, accounts,
share kit.
"""

"""The outbox: delivery rows with leased claims, rate limits, the one channel adapter factory.
"""

"""Customers and their consent (UU 27/2022 proof), CSV/API importers.
"""

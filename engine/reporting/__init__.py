"""Pasal 15 monitoring: metric definitions, periods, report build, CSV and HTML.
"""

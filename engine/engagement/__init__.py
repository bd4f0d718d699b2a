"""Engagement: tracking tokens and links, events per UMKM, bounces.
"""

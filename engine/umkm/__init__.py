"""UMKM businesses: the service layer, Pasal 10 eligibility, TTS wilayah codes, users and API
keys.
"""

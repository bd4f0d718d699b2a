"""UMKM businesses and Pasal 10 eligibility."""

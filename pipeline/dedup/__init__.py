"""Deduplication: exact (normalised text hash), near (MinHash LSH), semantic (FAISS)."""

"""Stages of the Arena Learning pipeline: Parquet folder in, Parquet folder out."""

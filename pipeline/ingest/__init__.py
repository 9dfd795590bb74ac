"""Ingest: instruction pools of many shapes -> canonical conversation rows + quarantine."""

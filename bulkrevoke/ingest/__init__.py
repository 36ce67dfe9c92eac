"""The ingest phase: read the input a batch at a time, validate it, store it in the
ledger and find duplicates, before anything is sent.
"""

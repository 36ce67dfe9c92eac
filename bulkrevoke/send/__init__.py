"""The send phase: pending rows from the ledger to the API and back, one customer at a
time, paced by the key's quota; and the read-back that verifies a run.
"""

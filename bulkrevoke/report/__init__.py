"""The report phase: the ledger, in input order, as report.csv, report.parquet,
failed.csv, report.xlsx, summary.html and summary.json.
"""

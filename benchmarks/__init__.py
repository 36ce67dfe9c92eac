"""bulkrevoke's benchmarks, a small package run by ``python benchmarks/run.py``.

``settings`` (what a run is configured by), ``harness`` (spawning and measuring processes),
``servers`` (the sandbox process, nginx or the aiohttp fixed server), ``inputs`` (generated
CSVs, arrival arithmetic), ``bench`` (what a part is handed, the measured CLI run),
``parts/`` (one module per measured part), ``report`` and ``machine`` (the table and the
RESULTS file). ``baseline_client.py`` and ``fixed_server.py`` are standalone scripts the
harness runs. Not part of the installed package; not run by CI.
"""

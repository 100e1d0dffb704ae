"""The operations around the run, each a runbook step's engine:

- `backup.py`: dump, restore, checksums, counts (the verified backup, 6.1 step 1)
- `estimate.py`: the duration estimate from staging's timeline (T-7)
- `managed.py`: a managed PostgreSQL checked over SQL with the provider's admin login (phase 10, no host)
- `httpcheck.py`: one timed HTTP check (smoke tests and monitoring)
- `monitor.py`: a monitoring snapshot against thresholds, the window summary (6.5); `state_read.py` the
  migration's state tables as the monitor reads them
- `report.py`: the final report's data and its HTML page (6.6); `report_md.py` its Markdown text
"""

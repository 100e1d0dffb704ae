"""python -m mongo2pg: the CLI (the monitoring job on the database host runs it this way)."""

from .cli import main

raise SystemExit(main())

"""`lnexp sweep`: grid parsing and expansion (grid), summary statistics (summary), the sweep
folder's state (folder), the runner the CLI calls (runner), where trials run (executors: the
local worker processes in workers, Dask in cluster)."""

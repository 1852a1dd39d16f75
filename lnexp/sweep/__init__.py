"""`lnexp sweep`: grid parsing and expansion (grid), summary statistics (summary), the sweep
folder's state (folder), the runner the CLI calls (runner) and the worker processes
(workers)."""

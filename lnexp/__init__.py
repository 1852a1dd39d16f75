"""lnexp: see and measure how normalization layers behave, from the shell or from Python.

    >>> import lnexp
    >>> out = lnexp.run("tutorial")            # the run folder, in a temporary directory
    >>> out.verdict                            # the one-line result
    >>> out.table()[:2]                        # stats.csv as rows (pandas.DataFrame(...))
    >>> out.figure("overview")                 # a matplotlib Figure, shown inline

The names below load on first use (module __getattr__): `import lnexp` imports no torch,
matplotlib or pydantic. See docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = ("load_config", "run", "compare", "sweep", "inspect", "load", "runs", "RunOutcome",
        "CompareOutcome", "SweepOutcome", "InspectOutcome", "Outcome")
_ERRORS = ("LnexpError", "ConfigError", "NormError", "NotDefinedError", "OutputError",
           "RunFolderError", "ClusterError", "ExportError")
__all__ = [  # noqa: RUF022  (grouped: the API, then the errors)
    "__version__", "load_config", "run", "compare", "sweep", "inspect", "load", "runs",
    "RunOutcome", "CompareOutcome", "SweepOutcome", "InspectOutcome", "Outcome",
    "LnexpError", "ConfigError", "NormError", "NotDefinedError", "OutputError",
    "RunFolderError", "ClusterError", "ExportError",
]

if TYPE_CHECKING:
    from lnexp.api import (
        CompareOutcome,
        InspectOutcome,
        Outcome,
        RunOutcome,
        SweepOutcome,
        compare,
        inspect,
        load,
        load_config,
        run,
        runs,
        sweep,
    )
    from lnexp.errors import (
        ClusterError,
        ConfigError,
        ExportError,
        LnexpError,
        NormError,
        NotDefinedError,
        OutputError,
        RunFolderError,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from lnexp import api

        return getattr(api, name)
    if name in _ERRORS:
        from lnexp import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'lnexp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

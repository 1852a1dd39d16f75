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

import sys
import types
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


# lnexp.compare, lnexp.sweep and lnexp.inspect are API functions and also the names of lnexp's
# own modules (lnexp/compare.py, lnexp/sweep/, lnexp/inspect/). The name stays the function:
# calling it runs the API, and attribute access (lnexp.compare.norm_configs, `from lnexp import
# sweep; sweep.runner`) reaches the module, so code written for either keeps working.
_SHADOWED = ("compare", "sweep", "inspect")


class _Entry:
    """An API function that is also the module of the same name (see _SHADOWED)."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _function(self) -> Any:
        from lnexp import api

        return getattr(api, self._name)

    def _module(self) -> types.ModuleType:
        import importlib

        return importlib.import_module(f"lnexp.{self._name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function()(*args, **kwargs)

    @property  # type: ignore[override]
    def __doc__(self) -> str | None:  # help(lnexp.compare) shows the API function's
        return self._function().__doc__

    @property
    def __wrapped__(self) -> Any:  # inspect.signature(lnexp.compare) is the function's
        return self._function()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._module(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<lnexp.{self._name}: the API function lnexp.api.{self._name}>"


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: keep the API entry
        super().__setattr__(name, value)


for _name in _SHADOWED:
    globals()[_name] = _Entry(_name)
sys.modules[__name__].__class__ = _Package


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

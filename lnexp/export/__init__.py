"""`lnexp export`: copy finished folders into other tools (MLflow). Each exporter is a module
that imports its tool only inside its functions, so no other command pays for that import."""

from __future__ import annotations

from lnexp.errors import LnexpError


class ExportError(LnexpError):
    """The export cannot start (the tool is not installed, the folder is not lnexp's, the
    tracking store is unreachable); exit 2."""

"""Domain errors. The CLI turns each into a one-line message and its exit code."""

from __future__ import annotations

# Exit codes, documented in the README and in `lnexp --help`.
EXIT_OK = 0
EXIT_EXPECTATION_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # an unexpected exception: a bug in lnexp (sysexits EX_SOFTWARE), never 1
# stdout closed early (`lnexp runs | head -1`): what a shell reports for a process killed by
# SIGPIPE (128 + 13), with nothing on stderr, as `yes | head -1` does.
EXIT_BROKEN_PIPE = 141


class LnexpError(Exception):
    """Base class: a problem lnexp reports without a traceback."""

    exit_code = EXIT_USAGE


class ConfigError(LnexpError):
    """One or more problems in a config file or its overrides; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class NormError(LnexpError):
    """An unknown norm name or options a norm cannot take."""


class NotDefinedError(LnexpError):
    """A norm not defined for this input (e.g. bn on a batch of 1 in train mode).

    `run` exits 2 (the config asks for it); `compare` keeps the other norms and exits 3.
    """


class OutputError(LnexpError):
    """The output folder cannot be created or written."""


class RunFolderError(LnexpError):
    """A run folder `lnexp check` cannot trust: missing, not a run, or not completed."""


class ClusterError(LnexpError):
    """A Dask cluster that cannot be started or reached (exit 2: nothing ran)."""


class ExportError(LnexpError):
    """An export cannot start: the tool is not installed, the folder is not lnexp's, or the
    tracking store is unreachable."""


class SpeedError(LnexpError):
    """Bad input to `lnexp speed`: a shape, dtype, device, layout or expectation (exit 2)."""

"""Errors of `lnexp inspect`. They subclass LnexpError, so the CLI's `guarded` turns each into
one line on stderr and exit 2 (usage or input error)."""

from __future__ import annotations

from lnexp.errors import LnexpError


class InspectError(LnexpError):
    """A model or input `lnexp inspect` cannot use: unknown name, bad factory, no norm layers,
    unreadable tensor file, text given to a model without a tokenizer, ..."""


class MissingExtraError(InspectError):
    """A packaged model or input needs an optional extra that is not installed."""

    def __init__(self, what: str, extra: str, missing: str):
        self.extra = extra
        super().__init__(f"{what} needs the '{extra}' extra ({missing} is not installed): "
                         f"pip install 'lnexp[{extra}]'")

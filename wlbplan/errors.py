"""One error tree. Every expected failure is a WlbplanError whose message says what to do.

The CLI prints these without a traceback and exits 1; anything else is a bug (exit 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wlbplan.model.spec import Diagnostic


class WlbplanError(Exception):
    """Root of every expected error; ``str(err)`` is the actionable message."""

    exit_code = 1


class SpecError(WlbplanError):
    """The spec file is missing, malformed or fails validation.

    ``diagnostics`` holds every finding (errors and warnings, with file positions) so a
    caller can render them itself instead of the one-string message.
    """

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)


class ConnectError(WlbplanError):
    """A host could not be reached or authenticated."""


class RemoteCommandError(WlbplanError):
    """A command on a host exited non-zero."""


class XapiLoginError(ConnectError):
    """The pool's XenAPI refused the login (or answered from a member, not the
    coordinator). ``code`` and ``params`` are xapi's, escaped and secrets masked."""

    def __init__(self, message: str, code: str, params: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.params = tuple(params)


class CommandTimeout(ConnectError):
    """A command on a host did not finish in time: that host counts as unreachable."""


class XapiError(RemoteCommandError):
    """A XenAPI call the pool refused: ``code`` and ``params`` are xapi's (escaped, secrets
    masked); the message says what to do."""

    def __init__(self, message: str, code: str, params: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.params = tuple(params)


class Interrupted(WlbplanError):
    """The operator asked to stop (SIGINT/SIGTERM)."""

    exit_code = 130


class StalePlanError(WlbplanError):
    """A saved plan no longer matches the spec or the observed state."""


class PlanFileError(WlbplanError):
    """A saved plan file is missing, unreadable, of an unknown format version or invalid."""


class LockError(WlbplanError):
    """Another apply holds the pool's lock."""


class VerifyError(WlbplanError):
    """A certificate or TLS check failed."""


class AcmeError(WlbplanError):
    """An ACME CA refused, failed or could not be reached: the message says what the CA
    said (its problem type and detail) and what to do."""


class ImportRefused(WlbplanError):
    """``wlbplan import`` cannot write a spec that describes what it found (the message
    says what is missing and how to provide it)."""


class LabError(WlbplanError):
    """The local lab could not be built, started, changed or stopped."""

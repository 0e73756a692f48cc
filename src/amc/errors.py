"""User-facing errors.

Anything a user can cause (a bad flag, a missing file, a policy for another model) is raised as
:class:`AmcError`. The CLI prints its message on one line and exits with status 2; everything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AmcError(Exception):
    """A problem the user can fix. The message names the problem and the fix, on one line."""

    exit_code = 2

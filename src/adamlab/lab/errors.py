"""The one exception type the lab raises for anything the user can fix.

A :class:`LabError` says what was wrong, the value given, and what is accepted (or where a file is
expected and how to get it). The CLI prints it as one line ``error: ...`` and exits with status 2;
nothing in the result store is written when one is raised before a run starts.
"""

from __future__ import annotations


class LabError(Exception):
    """A user-fixable problem with a sweep spec, a problem, a dataset file or a result store."""

"""Named crash points, for the kill-and-resume tests.

The campaign calls :func:`crash_point` at the moments where a crash is hardest to
survive (after the reference calls but before their commit, right after a commit,
after the MD, in the middle of a fit, in the validation-set MD).  When the environment
variable ``ACEAL_CRASH_AT`` names that point, the process kills itself with SIGKILL,
exactly as an out-of-memory killer or a batch system would: no ``finally`` block, no
flush.  Unset (always, outside tests) it costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point", "CRASH_ENV"]

CRASH_ENV = "ACEAL_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process if ``ACEAL_CRASH_AT`` equals ``name`` (e.g. ``"committed-2"``)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

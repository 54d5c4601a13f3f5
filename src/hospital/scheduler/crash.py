"""Named crash points, for tests of resume and exactly-once on simulated time.

``HOSPITAL_SCHEDULER_CRASH_AT`` holds comma-separated ``job:phase:YYYY-MM-DD`` entries
(phases: ``before``, ``after_run`` = the day's effect is done but not yet recorded,
``after_record``, and ``stream:mid_day``). At a matching point the process kills itself with
SIGKILL (a real crash: no cleanup, no finally blocks), or, with
``HOSPITAL_SCHEDULER_CRASH_MODE=raise``, raises :class:`SimulatedCrash` (in-process unit tests).
"""

from __future__ import annotations

import os
import signal
from datetime import date

CRASH_AT_ENV = "HOSPITAL_SCHEDULER_CRASH_AT"
CRASH_MODE_ENV = "HOSPITAL_SCHEDULER_CRASH_MODE"
PHASES = ("before", "after_run", "after_record", "mid_day")


class SimulatedCrash(BaseException):
    """Raised at a crash point in ``raise`` mode; BaseException so no handler swallows it."""


def point(job: str, phase: str, day: date) -> None:
    spec = os.environ.get(CRASH_AT_ENV)
    if not spec:
        return
    here = f"{job}:{phase}:{day.isoformat()}"
    if here not in {s.strip() for s in spec.split(",")}:
        return
    if os.environ.get(CRASH_MODE_ENV) == "raise":
        raise SimulatedCrash(here)
    os.kill(os.getpid(), signal.SIGKILL)

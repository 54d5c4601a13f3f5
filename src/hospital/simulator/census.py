"""The origin's census: patients already in a bed when the world starts (admitted earlier).

Drawn from its own random stream (``STREAM_CENSUS``), so the day's other draws do not depend on
it.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.simulator import catalog, clinical
from hospital.simulator.beds import BedBoard, Inpatient
from hospital.simulator.config import SimConfig
from hospital.simulator.draws import DEPT_CODES, VisitDraw, draw_visits
from hospital.simulator.registry import Registry
from hospital.simulator.timeline import I64, day_number
from hospital.simulator.vectors import child_rng

STREAM_CENSUS = 4
Obj = npt.NDArray[np.object_]


def draw_census(
    config: SimConfig, capacity: I64, reg: Registry, cdf: npt.NDArray[np.float64], day: date
) -> VisitDraw:
    """Visits of the patients in a bed at the start of ``day`` (``initial_occupancy`` of each
    ward; no pregnancies), admitted 1..los days before."""
    d = day_number(day)
    rng = child_rng(config.seed, STREAM_CENSUS, d)
    target = np.floor(capacity * config.initial_occupancy).astype(np.int64)
    c = draw_visits(rng, int(target.sum() * 20) + 100, day, reg.birth, reg.male, cdf)
    keep = c.admit & ~clinical.PREGNANCY[c.cond]
    _, first = np.unique(c.person, return_index=True)
    unique = np.zeros(keep.shape[0], dtype=bool)
    unique[first] = True
    keep &= unique
    # A bed seen at a given moment holds a long stay more often than a short one: candidates are
    # taken in a random order weighted by length of stay (an exponential race), so the census
    # does not empty within days and occupancy starts near its steady state.
    race = rng.exponential(size=c.n) / c.los
    chosen: list[int] = []
    for k in range(len(DEPT_CODES)):
        ward = np.flatnonzero(keep & (c.dept == k))
        chosen += ward[np.argsort(race[ward], kind="stable")][: int(target[k])].tolist()
    sel = np.array(sorted(chosen), dtype=np.int64)
    census = c.take(sel)
    # Admitted 1..los days ago, so every census stay ends today or later.
    back = np.minimum(census.los, 1 + (rng.random(sel.shape[0]) * census.los).astype(np.int64))
    return VisitDraw(**{**census.__dict__, "visit_day": d - back})


def place_census(
    board: BedBoard,
    draw: VisitDraw,
    i: int,
    visit_ids: pl.Series,
    admission_ids: pl.Series,
    attending: Obj,
    disposition: Obj,
    stay: I64,
    d: int,
) -> Inpatient:
    """Put census row ``i`` in a bed of its ward (ICU patients due to step down go on day one)."""
    planned = int(draw.visit_day[i] + draw.los[i])
    home, died = disposition[i] == "home", disposition[i] == "died"
    depart = planned if home else max(d, int(draw.visit_day[i] + min(stay[i], draw.los[i])))
    icu_days = int(draw.icu_days[i])
    a = Inpatient(
        admission_ids[i],
        visit_ids[i],
        int(draw.person[i]),
        int(draw.dept[i]),
        0,
        int(draw.admit_abs[i]),
        depart,
        int(draw.discharge_s[i]),
        attending[i],
        str(disposition[i]),
        planned,
        catalog.OTHER_FACILITIES[0][0] if disposition[i] == "transfer" else "",
        int(draw.visit_day[i]) + icu_days if icu_days and not died else -1,
        int(draw.step_down[i]),
        int(draw.visit_day[i]),
    )
    board.place(a)
    return a

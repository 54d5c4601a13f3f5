"""The bed board: who is in which bed, and the day's admissions, discharges and transfers.

Rules kept here, in one place:

- a patient holds one bed from admission to departure (``discharge_day`` at ``discharge_s``);
  every admission leaves on its day, whenever it was admitted (the origin's census included);
- a patient already in a bed is never admitted twice (the visit is seen as a review);
- with no free bed in the ward, a ward of the same kind lends one (``capacity.OVERFLOW``);
  with none there either, the patient is diverted to another facility;
- a patient leaves on the planned day when going home; one who dies, absconds or is referred
  out leaves on or before it (the planned day stays the expected discharge date);
- changes of ward need a free bed in the target ward; trips to service areas keep the bed;
- ICU: a patient steps down to a ward (``step_down``, or a ward that lends it beds) on the
  planned day (``icu_until``), or later when no ward bed is free; one who will die stays. A
  deteriorating ward patient steps up for a few days when ICU has a bed beyond the one it keeps
  for emergencies. An emergency that finds ICU full first moves the ICU patient closest to their
  step down (in ICU since before today) to a ward bed: the early step down real ICUs make under
  bed pressure (Chrusch et al., Crit Care Med 2009; Town et al., 2014). Only when that is not
  possible is the patient diverted;
- occupancy never exceeds capacity.

Events of a day are processed in time order, discharges before admissions at the same second.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hospital.errors import SimulationError
from hospital.simulator import catalog
from hospital.simulator.capacity import OVERFLOW
from hospital.simulator.draws import DEPT_CODES, EMERG, ICU, ICU_MOVE_SHARE, STEP_UP_FROM, MoveDraw
from hospital.simulator.timeline import DAY_S, I64

MED = catalog.DEPT_INDEX["MED"]
ICU_RESERVE = 1  # free ICU beds kept for emergencies: a step up never takes the last one

Row = dict[str, object]


@dataclass
class Inpatient:
    admission_id: str
    visit_id: str
    person: int
    dept: int
    bed: int
    admitted_s: int  # absolute seconds since 1970
    discharge_day: int  # the day the patient leaves
    discharge_s: int  # seconds into that day
    attending: str | None  # the ward's doctor, after the handover from the emergency department
    disposition: str = "home"  # home | died | transfer | absconded
    planned_day: int = -1  # expected discharge date (the day, for discharges home)
    referral: str = ""  # the facility a "transfer" disposition goes to
    icu_until: int = -1  # in ICU: the day to step down to a ward (-1: stays until leaving)
    step_down: int = -1  # the ward to step down to
    ward_since: int = -1  # the day the patient came to the current ward

    def __post_init__(self) -> None:
        if self.planned_day < 0:
            self.planned_day = self.discharge_day


VISIT_STATUS = {
    "home": "completed",
    "died": "died",
    "transfer": "transferred",
    "absconded": "absconded",
}


@dataclass(frozen=True)
class Admit:
    """A visit asking for a bed: who, where, when, and the stay it would start."""

    index: int  # the visit's row in the day's draw
    time_abs: int
    person: int
    dept: int
    los: int
    discharge_s: int
    admission_id: str
    visit_id: str
    attending: str | None
    divert_to: str  # the facility a diverted patient is sent to
    disposition: str = "home"
    stay: int = 0  # days to departure when it is not "home" (<= los); 0: los
    leave_s: int = 0  # second of the departure day for a disposition other than "home"
    icu_days: int = 0  # days in ICU before the step down (ICU admissions)
    step_down: int = -1  # the ward an ICU patient steps down to


@dataclass
class BedLog:
    """What the board did on one day, as rows for the record builders."""

    admissions: list[Row] = field(default_factory=list)
    discharges: list[Row] = field(default_factory=list)
    transfers: list[Row] = field(default_factory=list)
    visit_updates: list[Row] = field(default_factory=list)
    outcome: dict[int, str] = field(default_factory=dict)  # visit row -> admitted|diverted|seen
    diverted: dict[int, str] = field(default_factory=dict)  # visit row -> facility sent to
    ward: dict[int, int] = field(default_factory=dict)  # visit row -> ward of the bed it got
    departed: list[Inpatient] = field(default_factory=list)  # everyone who left today
    peak: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    end: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class BedBoard:
    """Beds per department and the inpatients in them (state carried between days)."""

    def __init__(self, capacity: npt.NDArray[np.int64]) -> None:
        self.capacity = np.asarray(capacity, dtype=np.int64)
        # Beds are handed out lowest number first (pop from the end of a descending list).
        self.free: list[list[int]] = [list(range(c, 0, -1)) for c in self.capacity.tolist()]
        self.inpatients: dict[str, Inpatient] = {}
        self.admitted_people: set[int] = set()

    # --- state ---------------------------------------------------------------------------------
    def occupancy(self) -> I64:
        return np.array(
            [c - len(f) for c, f in zip(self.capacity.tolist(), self.free, strict=True)],
            dtype=np.int64,
        )

    def has_bed(self, dept: int) -> bool:
        return bool(self.free[dept])

    def in_bed(self, person: int) -> bool:
        return person in self.admitted_people

    def place(self, a: Inpatient) -> None:
        """Put ``a`` in the lowest free bed of ``a.dept`` (the caller checked there is one)."""
        if not self.free[a.dept]:
            raise SimulationError(f"no free bed in {DEPT_CODES[a.dept]}")  # a bug, never data
        a.bed = self.free[a.dept].pop()
        self.inpatients[a.admission_id] = a
        self.admitted_people.add(a.person)

    def release(self, admission_id: str) -> Inpatient | None:
        a = self.inpatients.pop(admission_id, None)
        if a is not None:
            self.admitted_people.discard(a.person)
            self.free[a.dept].append(a.bed)
        return a

    def move(self, a: Inpatient, target: int) -> int:
        """Move ``a`` to a free bed in ``target``; returns the department it left."""
        old = a.dept
        self.free[old].append(a.bed)
        a.dept, a.bed = target, self.free[target].pop()
        return old

    def due(self, day_num: int) -> list[Inpatient]:
        """Inpatients planned to leave on ``day_num`` (or earlier: never left behind)."""
        return [a for a in self.inpatients.values() if a.discharge_day <= day_num]

    def free_ward(self, ward: int) -> int:
        """``ward``, or the first ward lending it beds, with a free bed (-1: none)."""
        return next((w for w in (ward, *OVERFLOW.get(ward, ())) if self.has_bed(w)), -1)

    # --- the day ---------------------------------------------------------------------------------
    def run_day(
        self,
        day_num: int,
        requests: list[Admit],
        moves: MoveDraw,
        move_ids: list[str],
    ) -> BedLog:
        """Discharges, admissions and movements of ``day_num`` in time order."""
        base = day_num * DAY_S
        log = BedLog()
        # The due list is taken now, after the census was placed: nobody due today is missed.
        todays = sorted(self.due(day_num), key=lambda a: (a.discharge_s, a.admission_id))
        events: list[tuple[int, int, int]] = [
            (base + min(a.discharge_s, DAY_S - 1), 0, i) for i, a in enumerate(todays)
        ]
        events += [(r.time_abs, 1, i) for i, r in enumerate(requests)]
        events += [(base + int(t), 2, i) for i, t in enumerate(moves.time_s.tolist())]
        # Step downs from ICU at the ward round, the planned day or later (when no bed was free).
        ready = sorted(
            (a for a in self.inpatients.values() if 0 <= a.icu_until <= day_num),
            key=lambda a: (a.discharge_s, a.admission_id),
        )
        events += [(base + min(a.discharge_s, DAY_S - 1), 3, i) for i, a in enumerate(ready)]
        events.sort()
        occupancy = self.occupancy()
        peak = occupancy.copy()
        for ts, kind, i in events:
            if kind == 0:
                a = todays[i]
                if self.release(a.admission_id) is None:
                    continue
                occupancy[a.dept] -= 1
                log.departed.append(a)
                log.discharges.append(
                    {
                        "admission_id": a.admission_id,
                        "visit_id": a.visit_id,
                        "patient_idx": a.person,
                        "department_code": DEPT_CODES[a.dept],
                        "discharged_at": ts,
                        "disposition": a.disposition,
                        "attending": a.attending,
                    }
                )
                log.visit_updates.append(
                    {"visit_id": a.visit_id, "ended_at": ts, "status": VISIT_STATUS[a.disposition]}
                )
                if a.disposition == "transfer":
                    log.transfers.append(
                        {
                            "transfer_id": None,
                            "patient_idx": a.person,
                            "admission_id": a.admission_id,
                            "transfer_type": "inter_facility",
                            "from_department": DEPT_CODES[a.dept],
                            "to_department": None,
                            "from_facility": catalog.FACILITY_CODE,
                            "to_facility": a.referral,
                            "reason": "referred for tertiary care",
                            "transferred_at": ts,
                        }
                    )
            elif kind == 1:
                self._admit(requests[i], day_num, log, occupancy, peak)
            elif kind == 2:
                self._move(moves, i, ts, move_ids[i], day_num, log, occupancy, peak)
            elif ready[i].admission_id in self.inpatients and ready[i].dept == ICU:
                ward = self.free_ward(ready[i].step_down)
                if ward >= 0:
                    self._change_ward(ready[i], ward, ts, day_num, None, log, occupancy, peak)
        if (peak > self.capacity).any():
            raise SimulationError(f"bed occupancy above capacity on day {day_num}")  # a bug
        log.peak, log.end = peak, occupancy
        return log

    def _admit(self, r: Admit, day_num: int, log: BedLog, occupancy: I64, peak: I64) -> None:
        if self.in_bed(r.person):
            log.outcome[r.index] = "seen"  # already in a bed: treated as a review
            return
        if r.dept == ICU and not self.has_bed(ICU):
            self._make_room_in_icu(r.time_abs, day_num, log, occupancy, peak)
        ward = self.free_ward(r.dept)
        if ward < 0:
            log.outcome[r.index] = "diverted"
            log.diverted[r.index] = r.divert_to
            log.transfers.append(
                {
                    "transfer_id": None,
                    "patient_idx": r.person,
                    "admission_id": None,
                    "transfer_type": "inter_facility",
                    "from_department": DEPT_CODES[r.dept],
                    "to_department": None,
                    "from_facility": catalog.FACILITY_CODE,
                    "to_facility": r.divert_to,
                    "reason": "no bed available",
                    "transferred_at": r.time_abs,
                }
            )
            return
        home = r.disposition == "home"
        a = Inpatient(
            r.admission_id,
            r.visit_id,
            r.person,
            ward,
            0,
            r.time_abs,
            day_num + (r.los if home else max(1, min(r.stay, r.los))),
            r.discharge_s if home else r.leave_s,
            r.attending,
            r.disposition,
            day_num + r.los,
            r.divert_to if r.disposition == "transfer" else "",
            day_num + r.icu_days if ward == ICU and r.icu_days and r.disposition != "died" else -1,
            r.step_down,
            day_num,
        )
        self.place(a)
        occupancy[ward] += 1
        peak[ward] = max(peak[ward], occupancy[ward])
        log.outcome[r.index] = "admitted"
        log.ward[r.index] = ward
        log.admissions.append(admission_row(a))

    def _make_room_in_icu(
        self, ts: int, day_num: int, log: BedLog, occupancy: I64, peak: I64
    ) -> None:
        """Step down the ICU patient closest to their planned step down (in ICU since before
        today, not dying) to a free ward bed, so an emergency is not diverted."""
        icu = [a for a in self.inpatients.values() if a.dept == ICU and a.icu_until >= 0]
        ready = sorted((a for a in icu if a.ward_since < day_num), key=lambda a: a.icu_until)
        for a in ready:
            ward = self.free_ward(a.step_down)
            if ward >= 0:
                self._change_ward(a, ward, ts, day_num, None, log, occupancy, peak, early=True)
                return

    def _change_ward(
        self,
        a: Inpatient,
        target: int,
        ts: int,
        day_num: int,
        transfer_id: str | None,
        log: BedLog,
        occupancy: I64,
        peak: I64,
        early: bool = False,
    ) -> None:
        old = self.move(a, target)
        a.ward_since = day_num
        if old == ICU:
            a.icu_until = -1
        occupancy[old] -= 1
        occupancy[target] += 1
        peak[target] = max(peak[target], occupancy[target])
        reason = "change in acuity"
        if old == ICU:
            reason = "stepped down early: ICU bed needed" if early else "step down from ICU"
        log.transfers.append(
            {
                "transfer_id": transfer_id,
                "patient_idx": a.person,
                "admission_id": a.admission_id,
                "transfer_type": "inter_department",
                "from_department": DEPT_CODES[old],
                "to_department": DEPT_CODES[target],
                "from_facility": catalog.FACILITY_CODE,
                "to_facility": catalog.FACILITY_CODE,
                "reason": reason,
                "transferred_at": ts,
            }
        )

    def _move(
        self,
        moves: MoveDraw,
        i: int,
        ts: int,
        transfer_id: str,
        day_num: int,
        log: BedLog,
        occupancy: I64,
        peak: I64,
    ) -> None:
        if not self.inpatients:
            return
        current = list(self.inpatients.values())
        a = current[int(moves.pick[i] * len(current))]
        if moves.kind[i] < ICU_MOVE_SHARE:
            if a.dept == EMERG and self.has_bed(MED):
                # Short-stay emergency beds step down to general medicine.
                self._change_ward(a, MED, ts, day_num, transfer_id, log, occupancy, peak)
            elif (
                a.dept in STEP_UP_FROM
                and a.discharge_day - day_num >= 2
                and len(self.free[ICU]) > ICU_RESERVE
            ):
                # A deteriorating ward patient: a few days in ICU (not past the day before
                # leaving), then back to their ward; one who will die stays in ICU.
                back = a.dept
                self._change_ward(a, ICU, ts, day_num, transfer_id, log, occupancy, peak)
                stay = min(int(moves.icu_days[i]), a.discharge_day - day_num - 1)
                a.icu_until = -1 if a.disposition == "died" else day_num + stay
                a.step_down = back
            return
        area = catalog.SERVICE_AREAS[int(moves.area[i])]
        log.transfers.append(
            {
                "transfer_id": transfer_id,
                "patient_idx": a.person,
                "admission_id": a.admission_id,
                "from_facility": catalog.FACILITY_CODE,
                "to_facility": catalog.FACILITY_CODE,
                "transferred_at": ts,
                "transfer_type": "ward_movement",
                "from_department": DEPT_CODES[a.dept],
                "to_department": area,
                "reason": f"to {area.lower().replace('_', ' ')}",
            }
        )


def admission_row(a: Inpatient) -> Row:
    return {
        "admission_id": a.admission_id,
        "visit_id": a.visit_id,
        "patient_idx": a.person,
        "department_code": DEPT_CODES[a.dept],
        "bed_number": a.bed,
        "admitted_at": a.admitted_s,
        "expected_discharge_date": a.planned_day,
    }

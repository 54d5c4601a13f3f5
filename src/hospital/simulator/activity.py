"""One simulated day of hospital activity, drawn vectorized from a per-day random stream.

:class:`HospitalSim` carries the state between days (the bed board, changes due on later days,
which people are already EHR patients) and :meth:`HospitalSim.step` returns a
:class:`DayResult` of polars frames. No I/O happens here. The rules live in their own modules:
draws (:mod:`.draws`), beds (:mod:`.beds`), clinical records (:mod:`.records`), patient flow
records (:mod:`.movements`), time and the day boundary (:mod:`.timeline`).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.errors import SimulationError
from hospital.simulator import catalog, movements, records
from hospital.simulator.beds import Admit, BedBoard, BedLog, Inpatient, admission_row
from hospital.simulator.config import SimConfig
from hospital.simulator.draws import (
    CAPACITY,
    DEPT_CODES,
    EMERG,
    VisitDraw,
    age_weight_cdf,
    draw_moves,
    draw_visits,
    expected_visits,
    season_factor,
)
from hospital.simulator.population import People
from hospital.simulator.result import (
    ALLERGY_UPDATE_SCHEMA,
    DELETE_DX_SCHEMA,
    DELETE_NOTE_SCHEMA,
    MED_UPDATE_SCHEMA,
    VISIT_UPDATE_SCHEMA,
    Agenda,
    DayResult,
    concat,
    visit_update_frame,
)
from hospital.simulator.staff import Staff, StaffChanges, day_number
from hospital.simulator.timeline import DAY_S, I64, day_end, id_series
from hospital.simulator.vectors import child_rng

STREAM_ACTIVITY = 3
STREAM_CENSUS = 4

__all__ = ["DayResult", "HospitalSim", "Inpatient", "expected_visits", "season_factor"]


class HospitalSim:
    """The hospital world, advanced one simulated day at a time from ``config.origin``."""

    def __init__(self, config: SimConfig, people: People) -> None:
        if people.size != config.num_people:
            raise SimulationError(
                f"population has {people.size} people but the config says {config.num_people}"
            )
        self.config = config
        self.people = people
        self.staff = Staff(config, people)
        self.today = config.origin
        self.seen = np.zeros(people.size, dtype=np.bool_)
        self.beds = BedBoard(CAPACITY)
        self.agenda = Agenda()
        self._cdf = age_weight_cdf(people, config.origin)

    @property
    def inpatients(self) -> dict[str, Inpatient]:
        return self.beds.inpatients

    # --- the day ---------------------------------------------------------------------------------
    def step(self) -> DayResult:
        """Simulate ``self.today`` and move the clock to the next day."""
        day = self.today
        d = day_number(day)
        rng = child_rng(self.config.seed, STREAM_ACTIVITY, d)
        staff_changes = self.staff.advance(day)
        roster = self.staff.roster(day)

        expected = expected_visits(self.config, day)
        draw = draw_visits(rng, int(rng.poisson(expected)), day, self.people, self._cdf)
        census_n = 0
        if d == day_number(self.config.origin):
            census = self._census(day)
            census_n = census.n
            draw = VisitDraw.concat(census, draw)
        total = draw.n
        visit_ids = id_series(rng, total, "visit_id")
        admission_ids = id_series(rng, total, "admission_id")
        is_census = np.arange(total) < census_n
        visit_dept = np.asarray(np.where(draw.emergency & ~is_census, EMERG, draw.dept))
        attending = self._attending(rng, roster, visit_dept)
        moves = draw_moves(rng, self.config.transfer_interval_minutes)
        move_ids = id_series(rng, moves.n, "transfer_id").to_list()
        divert_to = rng.integers(0, len(catalog.OTHER_FACILITIES), size=total)

        # Census first: they are in their beds before the day's first event, and the board takes
        # its list of the day's discharges only afterwards (nobody due out on day one is missed).
        census_rows = [
            admission_row(self._place_census(draw, i, visit_ids, admission_ids, attending))
            for i in range(census_n)
        ]
        admit_abs = draw.admit_abs
        requests = [
            Admit(
                index=i,
                time_abs=int(admit_abs[i]),
                person=int(draw.person[i]),
                dept=int(draw.dept[i]),
                los=int(draw.los[i]),
                discharge_s=int(draw.discharge_s[i]),
                admission_id=admission_ids[i],
                visit_id=visit_ids[i],
                attending=attending[i],
                divert_to=catalog.OTHER_FACILITIES[int(divert_to[i])][0],
            )
            for i in np.flatnonzero(draw.admit & ~is_census).tolist()
        ]
        log = self.beds.run_day(d, requests, moves, move_ids)
        log.admissions[:0] = census_rows
        outcome = np.full(total, "seen", dtype=object)
        outcome[:census_n] = "admitted"
        for i, o in log.outcome.items():
            outcome[i] = o

        visits = records.DayVisits(
            day_num=d,
            draw=draw,
            visit_ids=visit_ids,
            patient_ids=records.patient_ids(self.people, draw.person).alias("patient_id"),
            attending=pl.Series("attending_staff_id", attending.tolist(), dtype=pl.String),
            dept=visit_dept,
            outcome=outcome,
            limit_abs=self._end_visits(draw, outcome, visit_ids, log, d),
        )
        result = self._records(rng, day, visits, log, roster, expected)
        result.staff_changes = staff_changes
        self.today = day + timedelta(days=1)
        return result

    def _attending(
        self, rng: np.random.Generator, roster: pl.DataFrame, visit_dept: I64
    ) -> npt.NDArray[np.object_]:
        """A doctor of the visit's department rostered today (any doctor if none)."""
        doctors = roster.filter(pl.col("role").is_in(["doctor", "surgeon"]))
        attending = np.empty(visit_dept.shape[0], dtype=object)
        all_docs = doctors["staff_id"].to_numpy()
        for k, code in enumerate(DEPT_CODES):
            mask = visit_dept == k
            pool = doctors.filter(pl.col("department_code") == code)["staff_id"].to_numpy()
            pool = pool if pool.shape[0] else all_docs
            if mask.any() and pool.shape[0]:
                attending[mask] = pool[rng.integers(0, pool.shape[0], size=int(mask.sum()))]
        return attending

    def _end_visits(
        self,
        draw: VisitDraw,
        outcome: npt.NDArray[np.object_],
        visit_ids: pl.Series,
        log: BedLog,
        d: int,
    ) -> I64:
        """End the visits that were not admitted; returns each visit's last allowed event second.

        A visit that is seen ends a few hours after arrival, perhaps after midnight (its end is
        then an update on that later day); a diverted visit ends at the diversion decision; an
        admitted visit stays open (events until the end of the day).
        """
        end = np.where(outcome == "diverted", draw.admit_abs, draw.start_abs + draw.end_delay)
        for i in np.flatnonzero(outcome != "admitted").tolist():
            row: dict[str, object] = {
                "visit_id": visit_ids[i],
                "ended_at": int(end[i]),
                "status": "transferred" if outcome[i] == "diverted" else "completed",
            }
            end_day = int(end[i]) // DAY_S
            if end_day == d:
                log.visit_updates.append(row)
            else:
                self.agenda.at(end_day).visit_updates.append(visit_update_frame([row]))
        last = day_end(d)
        return np.asarray(
            np.where(outcome == "admitted", last, np.minimum(end, last)), dtype=np.int64
        )

    def _records(
        self,
        rng: np.random.Generator,
        day: date,
        v: records.DayVisits,
        log: BedLog,
        roster: pl.DataFrame,
        expected: float,
    ) -> DayResult:
        d = v.day_num
        due = self.agenda.take(d)
        new = records.new_patients(v, self.people, self.seen)
        diagnoses = records.diagnoses(rng, v, self.agenda)
        allergies = records.allergies(rng, v, new, self.agenda)
        rx = records.prescriptions(rng, v, self.agenda)
        treatments = records.treatments(rng, v)
        notes = records.clerking_notes(rng, v, self.people)
        if log.discharges:
            summaries = records.discharge_summaries(rng, log.discharges, self.people)
            notes = pl.concat([notes, summaries], how="vertical")
        wrong = rng.random(notes.height) < 0.01  # entered in error: removed the next day
        self.agenda.at(d + 1).deleted_notes.append(notes.filter(pl.Series(wrong)).select("note_id"))
        transports = movements.transports(rng, v, self.people, log.diverted)
        transfers = movements.transfers_frame(rng, log.transfers, self.people)
        return DayResult(
            day=day,
            patients=new.frame,
            visits=records.visits_frame(v),
            diagnoses=diagnoses,
            allergies=allergies,
            medications=rx.medications,
            doctor_notes=notes,
            treatments=treatments,
            visit_updates=concat(
                [*due.visit_updates, visit_update_frame(log.visit_updates)], VISIT_UPDATE_SCHEMA
            ),
            medication_updates=concat([*due.medication_updates, rx.ended_today], MED_UPDATE_SCHEMA),
            allergy_updates=concat(due.allergy_updates, ALLERGY_UPDATE_SCHEMA),
            deleted_diagnoses=concat(due.deleted_diagnoses, DELETE_DX_SCHEMA),
            deleted_notes=concat(due.deleted_notes, DELETE_NOTE_SCHEMA),
            admissions=movements.admissions_frame(log.admissions, self.people),
            discharges=movements.discharges_frame(log.discharges, self.people),
            transfers=transfers,
            transports=transports,
            pharmacy_orders=rx.pharmacy_orders,
            staff_assignments=roster.drop("role"),
            staff_changes=StaffChanges(),
            occupancy=pl.DataFrame(
                {
                    "department_code": DEPT_CODES,
                    "bed_capacity": self.beds.capacity.tolist(),
                    "peak_occupancy": log.peak.tolist(),
                    "end_occupancy": log.end.tolist(),
                }
            ),
            expected_visits=expected,
        )

    # --- initial state -----------------------------------------------------------------------
    def _census(self, day: date) -> VisitDraw:
        """Patients already in beds when the world starts (admitted on earlier days)."""
        d = day_number(day)
        rng = child_rng(self.config.seed, STREAM_CENSUS, d)
        target = np.floor(CAPACITY * self.config.initial_occupancy).astype(np.int64)
        c = draw_visits(rng, int(target.sum() * 6) + 100, day, self.people, self._cdf)
        keep = c.admit.copy()
        _, first = np.unique(c.person, return_index=True)
        unique = np.zeros(keep.shape[0], dtype=bool)
        unique[first] = True
        keep &= unique
        chosen: list[int] = []
        for k in range(len(DEPT_CODES)):
            chosen += np.flatnonzero(keep & (c.dept == k))[: int(target[k])].tolist()
        sel = np.array(sorted(chosen), dtype=np.int64)
        census = c.take(sel)
        # Admitted 1..los days ago, so every census stay ends today or later.
        back = np.minimum(census.los, 1 + (rng.random(sel.shape[0]) * census.los).astype(np.int64))
        return VisitDraw(**{**census.__dict__, "visit_day": d - back})

    def _place_census(
        self,
        draw: VisitDraw,
        i: int,
        visit_ids: pl.Series,
        admission_ids: pl.Series,
        attending: npt.NDArray[np.object_],
    ) -> Inpatient:
        a = Inpatient(
            admission_ids[i],
            visit_ids[i],
            int(draw.person[i]),
            int(draw.dept[i]),
            0,
            int(draw.admit_abs[i]),
            int(draw.visit_day[i] + draw.los[i]),
            int(draw.discharge_s[i]),
            attending[i],
        )
        self.beds.place(a)
        return a

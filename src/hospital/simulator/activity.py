"""One simulated day of hospital activity, drawn vectorized from a per-day random stream.

:class:`HospitalSim` carries the state between days (the bed board, the living population,
changes due on later days) and :meth:`HospitalSim.step` returns a :class:`DayResult` of polars
frames. No I/O happens here. The rules live in their own modules: demand and case mix
(:mod:`.draws`), beds (:mod:`.beds`, :mod:`.capacity`), people (:mod:`.registry`), clinical
records (:mod:`.records`, :mod:`.orders`, :mod:`.notes`, :mod:`.clinical`), patient flow records
(:mod:`.movements`), who is on duty (:mod:`.rota`), time and the day boundary (:mod:`.timeline`).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.errors import SimulationError
from hospital.simulator import catalog, clinical, movements, notes, orders, records
from hospital.simulator.beds import Admit, BedBoard, BedLog, Inpatient, admission_row
from hospital.simulator.capacity import plan_beds
from hospital.simulator.census import draw_census, place_census
from hospital.simulator.config import SimConfig
from hospital.simulator.draws import (
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
from hospital.simulator.registry import NEVER, Registry
from hospital.simulator.result import (
    ALLERGY_UPDATE_SCHEMA,
    DEATH_SCHEMA,
    DELETE_DX_SCHEMA,
    DELETE_NOTE_SCHEMA,
    MED_UPDATE_SCHEMA,
    PATIENT_UPDATE_SCHEMA,
    VISIT_UPDATE_SCHEMA,
    Agenda,
    DayResult,
    concat,
    visit_update_frame,
)
from hospital.simulator.rota import Rota
from hospital.simulator.staff import Staff, StaffChanges
from hospital.simulator.timeline import (
    DAY_S,
    HOUR_S,
    I64,
    day_end,
    day_number,
    id_series,
    inside,
    ts_series,
)
from hospital.simulator.vectors import child_rng

STREAM_ACTIVITY = 3
STREAM_PEOPLE = 5
CDF_REFRESH_DAYS = 28  # patients are sampled by age and alive: refreshed every four weeks

__all__ = ["DayResult", "HospitalSim", "Inpatient", "expected_visits", "season_factor"]
Obj = npt.NDArray[np.object_]


class HospitalSim:
    """The hospital world, advanced one simulated day at a time from ``config.origin``."""

    def __init__(self, config: SimConfig, people: People) -> None:
        if people.size != config.num_people:
            raise SimulationError(
                f"population has {people.size} people but the config says {config.num_people}"
            )
        self.config = config
        self.people = people
        self.registry = Registry(people)
        self.staff = Staff(config, people)
        self.staff.registry = self.registry
        self.today = config.origin
        self.beds = BedBoard(plan_beds(config))
        self.agenda = Agenda()
        self._cdf = np.zeros(0)
        self._alive = people.size

    @property
    def inpatients(self) -> dict[str, Inpatient]:
        return self.beds.inpatients

    # --- the day ---------------------------------------------------------------------------------
    def step(self) -> DayResult:
        """Simulate ``self.today`` and move the clock to the next day."""
        day = self.today
        d = day_number(day)
        origin = day_number(self.config.origin)
        rng = child_rng(self.config.seed, STREAM_ACTIVITY, d)
        reg = self.registry
        staff_changes = self.staff.advance(day)
        roster = self.staff.roster(day)
        rota = Rota(roster)
        if (d - origin) % CDF_REFRESH_DAYS == 0:
            n = reg.n
            self._cdf = age_weight_cdf(reg.birth[:n], day, reg.died[:n] == NEVER)

        expected = expected_visits(self.config, day)
        draw = draw_visits(rng, int(rng.poisson(expected)), day, reg.birth, reg.male, self._cdf)
        census = None
        if d == origin:
            census = draw_census(self.config, self.beds.capacity, reg, self._cdf, day)
        draw = draw.take(np.flatnonzero(self._can_visit(draw, d, census)))
        census_n = 0
        if census is not None:
            census_n = census.n
            draw = VisitDraw.concat(census, draw)
        total = draw.n
        visit_ids = id_series(rng, total, "visit_id")
        admission_ids = id_series(rng, total, "admission_id")
        is_census = np.arange(total) < census_n
        visit_dept = np.asarray(np.where(draw.emergency & ~is_census, EMERG, draw.dept))
        admit_abs = draw.admit_abs
        clerk = rota.pick(rng, visit_dept, "doctor", np.maximum(draw.start_abs, d * DAY_S))
        ward_doc = rota.pick(rng, draw.dept, "doctor", np.maximum(admit_abs, d * DAY_S))
        disposition, stay, leave_s = self._dispositions(rng, draw)
        moves = draw_moves(rng, len(self.beds.inpatients), self.config.moves_per_inpatient)
        move_ids = id_series(rng, moves.n, "transfer_id").to_list()
        divert_to = rng.integers(0, len(catalog.OTHER_FACILITIES), size=total)
        icu_days, step_down = draw.icu_days, draw.step_down

        # Census first: they are in their beds before the day's first event, and the board takes
        # its list of the day's departures only afterwards (nobody due out on day one is missed).
        census_rows = [
            admission_row(
                place_census(
                    self.beds, draw, i, visit_ids, admission_ids, ward_doc, disposition, stay, d
                )
            )
            for i in range(census_n)
        ]
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
                attending=ward_doc[i],
                divert_to=catalog.OTHER_FACILITIES[int(divert_to[i])][0],
                disposition=str(disposition[i]),
                stay=int(stay[i]),
                leave_s=int(leave_s[i]),
                icu_days=int(icu_days[i]),
                step_down=int(step_down[i]),
            )
            for i in np.flatnonzero(draw.admit & ~is_census).tolist()
        ]
        log = self.beds.run_day(d, requests, moves, move_ids)
        log.admissions[:0] = census_rows
        outcome = np.full(total, "seen", dtype=object)
        outcome[:census_n] = "admitted"
        ward = np.full(total, -1, dtype=np.int64)
        ward[:census_n] = draw.dept[:census_n]
        for i, o in log.outcome.items():
            outcome[i] = o
        for i, w in log.ward.items():
            ward[i] = w
        diverted_to = np.full(total, "", dtype=object)
        for i, f in log.diverted.items():
            diverted_to[i] = f
        reg.last_delivery[draw.person[clinical.DELIVERY[draw.cond] & ~is_census]] = d

        admitted = outcome == "admitted"
        visits = records.DayVisits(
            day_num=d,
            draw=draw,
            visit_ids=visit_ids,
            patient_ids=reg.person_ids(draw.person).alias("patient_id"),
            attending=pl.Series(
                "attending_staff_id", np.where(admitted, ward_doc, clerk).tolist(), dtype=pl.String
            ),
            clerk=pl.Series("author_staff_id", clerk.tolist(), dtype=pl.String),
            dept=visit_dept,
            outcome=outcome,
            limit_abs=self._end_visits(draw, outcome, visit_ids, log, d),
            ward=ward,
            diverted_to=diverted_to,
        )
        result = self._records(rng, day, visits, log, roster, rota, expected, admit_abs)
        result.staff_changes = staff_changes
        self.today = day + timedelta(days=1)
        return result

    def _can_visit(
        self, draw: VisitDraw, d: int, census: VisitDraw | None
    ) -> npt.NDArray[np.bool_]:
        """Nobody visits when dead or in a bed (the origin's census included), nor twice in a
        day (a second visit could start after the first one's admission); no delivery within
        ~10 months of the last one."""
        reg = self.registry
        alive = reg.died[draw.person] == NEVER
        beds = np.fromiter(self.beds.admitted_people, dtype=np.int64)
        if census is not None:
            beds = np.r_[beds, census.person]
        in_bed = np.isin(draw.person, beds)
        order = np.lexsort((draw.start_s, draw.person))
        first = np.zeros(draw.n, dtype=np.bool_)
        first[order[np.diff(draw.person[order], prepend=-1) != 0]] = True
        recent = (d - reg.last_delivery[draw.person]) < clinical.MIN_BIRTH_INTERVAL_DAYS
        pregnant_again = clinical.PREGNANCY[draw.cond] & recent
        return np.asarray(alive & ~in_bed & first & ~pregnant_again, dtype=np.bool_)

    def _dispositions(self, rng: np.random.Generator, draw: VisitDraw) -> tuple[Obj, I64, I64]:
        """How an admission would end (home, died, transfer, absconded), its length and time."""
        u = rng.random(draw.n)
        die = clinical.DIES[draw.cond]
        out = die + clinical.TRANSFERS_OUT[draw.cond]
        gone = out + clinical.ABSCONDS[draw.cond]
        disposition = np.select(
            [u < die, u < out, u < gone], ["died", "transfer", "absconded"], "home"
        ).astype(object)
        stay = 1 + (rng.random(draw.n) * draw.los).astype(np.int64)
        leave_s = rng.integers(HOUR_S, 23 * HOUR_S, size=draw.n).astype(np.int64)
        return disposition, stay, leave_s

    def _end_visits(
        self,
        draw: VisitDraw,
        outcome: Obj,
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

    # --- records ---------------------------------------------------------------------------------
    def _records(
        self,
        rng: np.random.Generator,
        day: date,
        v: records.DayVisits,
        log: BedLog,
        roster: pl.DataFrame,
        rota: Rota,
        expected: float,
        admit_abs: I64,
    ) -> DayResult:
        d = v.day_num
        reg = self.registry
        due = self.agenda.take(d)
        new = records.new_patients(rng, v, reg)
        diagnoses = records.diagnoses(rng, v, reg, self.agenda)
        allergies = records.allergies(rng, v, new, reg, self.agenda)
        rx = orders.prescriptions(rng, v, reg, self.agenda)
        treatments = orders.treatments(rng, v, rota, admit_abs)
        doctor_notes = notes.clerking_notes(rng, v, reg)
        if log.departed:
            times = [int(r["discharged_at"]) for r in log.discharges]  # type: ignore[call-overload]
            summaries = notes.departure_notes(rng, log.departed, times, reg, rota)
            doctor_notes = pl.concat([doctor_notes, summaries], how="vertical")
        wrong = rng.random(doctor_notes.height) < 0.01  # entered in error: removed the next day
        self.agenda.at(d + 1).deleted_notes.append(
            doctor_notes.filter(pl.Series(wrong)).select("note_id")
        )
        referrals = [
            (a.person, a.visit_id, int(r["discharged_at"]), a.referral)  # type: ignore[call-overload]
            for a, r in zip(log.departed, log.discharges, strict=True)
            if a.disposition == "transfer"
        ]
        transports = movements.transports(rng, v, reg, log.diverted, referrals)
        transfers = movements.transfers_frame(rng, log.transfers, reg)
        patients, births = self._births(rng, v, new.frame, treatments, admit_abs)
        deaths, patient_updates = self._deaths(rng, v, log)
        return DayResult(
            day=day,
            patients=patients,
            visits=records.visits_frame(v),
            diagnoses=diagnoses,
            allergies=allergies,
            medications=rx.medications,
            doctor_notes=doctor_notes,
            treatments=treatments,
            visit_updates=concat(
                [*due.visit_updates, visit_update_frame(log.visit_updates)], VISIT_UPDATE_SCHEMA
            ),
            medication_updates=concat([*due.medication_updates, rx.ended_today], MED_UPDATE_SCHEMA),
            allergy_updates=concat(due.allergy_updates, ALLERGY_UPDATE_SCHEMA),
            deleted_diagnoses=concat(due.deleted_diagnoses, DELETE_DX_SCHEMA),
            deleted_notes=concat(due.deleted_notes, DELETE_NOTE_SCHEMA),
            admissions=movements.admissions_frame(log.admissions, reg),
            discharges=movements.discharges_frame(log.discharges, reg),
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
            patient_updates=patient_updates,
            births=births,
            deaths=deaths,
        )

    # --- the population ------------------------------------------------------------------------
    def _births(
        self,
        rng: np.random.Generator,
        v: records.DayVisits,
        patients: pl.DataFrame,
        treatments: pl.DataFrame,
        admit_abs: I64,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Newborns of today's deliveries (people and EHR patients), and the catchment's other
        births (people only), so births follow the crude birth rate."""
        d = v.day_num
        reg = self.registry
        prng = child_rng(self.config.seed, STREAM_PEOPLE, d)
        delivered = np.flatnonzero(
            clinical.DELIVERY[v.draw.cond] & (v.outcome == "admitted") & (v.draw.visit_day == d)
        )
        mothers = v.draw.person[delivered]
        born_in = reg.register_births(prng, d, mothers)
        # Born a few hours after admission, the same day.
        born_at = inside(
            admit_abs[delivered],
            prng.integers(1800, 6 * HOUR_S, size=delivered.shape[0]),
            6 * HOUR_S,
            day_end(d),
        )
        reg.seen[born_in] = True
        expected = self.config.births_per_1000 * self._alive / 1000 / 365.25
        k = max(0, int(prng.poisson(expected)) - delivered.shape[0])
        others = reg.register_births(prng, d, self._mothers(prng, k, d))
        self._alive += born_in.shape[0] + others.shape[0]
        frame = reg.rows(np.r_[born_in, others].astype(np.int64))
        births = frame.with_columns(
            pl.Series("born_in_hospital", [True] * born_in.shape[0] + [False] * others.shape[0]),
            pl.Series(
                "mother_id",
                reg.person_ids(mothers).to_list() + [None] * others.shape[0],
                dtype=pl.String,
            ),
        )
        if born_in.shape[0]:
            created = ts_series("created_at", born_at)
            babies = (
                frame.head(born_in.shape[0])
                .rename({"person_id": "patient_id"})
                .with_columns(created, created.alias("updated_at"))
            )
            patients = pl.concat([patients, babies], how="vertical")
        return patients, births

    def _mothers(self, rng: np.random.Generator, k: int, d: int) -> I64:
        """``k`` women aged 15-49 alive today (rejection sampling from the whole registry)."""
        reg = self.registry
        out: list[int] = []
        while len(out) < k:
            cand = rng.integers(0, reg.n, size=max(64, 8 * k))
            age = (d - reg.birth[cand]) / 365.25
            ok = ~reg.male[cand] & (age >= 15) & (age < 50) & (reg.died[cand] == NEVER)
            out += cand[ok].tolist()
        return np.array(out[:k], dtype=np.int64)

    def _deaths(
        self, rng: np.random.Generator, v: records.DayVisits, log: BedLog
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Deaths in the hospital (by condition and ward) and in the community (life table)."""
        d = v.day_num
        reg = self.registry
        prng = child_rng(self.config.seed, STREAM_PEOPLE, d, 1)
        died = [
            (a, int(r["discharged_at"]))  # type: ignore[call-overload]
            for a, r in zip(log.departed, log.discharges, strict=True)
            if a.disposition == "died"
        ]
        in_hosp = np.array([a.person for a, _ in died], dtype=np.int64)
        reg.died[in_hosp] = d
        exclude = (
            set(self.beds.admitted_people) | self.staff.person_set() | set(v.draw.person.tolist())
        )
        community = reg.background_deaths(prng, d, self.config.mortality_scale, exclude)
        self._alive -= in_hosp.shape[0] + community.shape[0]
        when = np.r_[
            np.array([t for _, t in died], dtype=np.int64),
            d * DAY_S + prng.integers(0, DAY_S, size=community.shape[0]),
        ].astype(np.int64)
        person = np.r_[in_hosp, community].astype(np.int64)
        deaths = pl.DataFrame(
            {
                "person_id": reg.person_ids(person),
                "died_at": ts_series("died_at", when),
                "age": pl.Series(reg.age_on(person, d), dtype=pl.Int64),
                "sex": pl.Series(np.where(reg.male[person], "M", "F").tolist(), dtype=pl.String),
                "place": pl.Series(
                    ["hospital"] * in_hosp.shape[0] + ["community"] * community.shape[0],
                    dtype=pl.String,
                ),
                "department_code": pl.Series(
                    [DEPT_CODES[a.dept] for a, _ in died] + [None] * community.shape[0],
                    dtype=pl.String,
                ),
            },
            schema=DEATH_SCHEMA,
        )
        patients = reg.seen[person]
        updates = pl.DataFrame(
            {
                "patient_id": deaths["person_id"].filter(pl.Series(patients)),
                "deceased_at": deaths["died_at"].filter(pl.Series(patients)),
            }
        ).with_columns(pl.col("deceased_at").alias("updated_at"))
        return deaths, updates.select(
            list(PATIENT_UPDATE_SCHEMA)
        ) if updates.height else pl.DataFrame(schema=PATIENT_UPDATE_SCHEMA)

"""Simulator correctness (issue 7 §8): beds are conserved, rows stay in their day and visit,
and the stream's ticks drop nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hospital.clock import day_start
from hospital.errors import SimulationError
from hospital.simulator import catalog
from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import simulate
from hospital.simulator.beds import Admit, BedBoard, Inpatient
from hospital.simulator.draws import MoveDraw
from hospital.simulator.events import BatchRecords, DayEvents, Event, day_events, event_id, ticks
from hospital.simulator.population import People
from hospital.simulator.timeline import inside

from .conftest import SMALL

NO_MOVES = MoveDraw(
    np.zeros(0, dtype=np.int64),
    np.zeros(0),
    np.zeros(0),
    np.zeros(0, dtype=np.int64),
    np.zeros(0, dtype=np.int64),
)


def test_every_admission_is_discharged_on_its_planned_day_or_still_in_bed(
    long_run: tuple[HospitalSim, list[DayResult]],
) -> None:
    sim, results = long_run
    last = results[-1].day
    planned: dict[str, date] = {}
    discharged: dict[str, date] = {}
    disposition: dict[str, str] = {}
    for r in results:
        for aid, due in r.admissions.select("admission_id", "expected_discharge_date").iter_rows():
            assert aid not in planned, "an admission is recorded once"
            planned[aid] = due
        for aid, at, how in r.discharges.select(
            "admission_id", "discharged_at", "discharge_disposition"
        ).iter_rows():
            assert aid not in discharged, "an admission is discharged once"
            discharged[aid] = at.date()
            disposition[aid] = how
    for aid, due in planned.items():
        if aid in discharged:
            # Home on the planned day; a death, referral or abscondment on or before it.
            if disposition[aid] == "home":
                assert discharged[aid] == due, (aid, due, discharged[aid])
            else:
                assert discharged[aid] <= due, (aid, due, discharged[aid])
        else:
            assert aid in sim.inpatients, f"{aid} was never discharged and holds no bed"
            assert due > last, (aid, due)
    assert set(sim.inpatients) <= set(planned)
    # The census (in a bed when the world started) drains like everyone else.
    origin = day_start(SMALL.origin)
    census = results[0].admissions.filter(pl.col("admitted_at") < origin)["admission_id"]
    assert census.len() > 500
    still = [a for a in census.to_list() if a in sim.inpatients]
    assert all(planned[a] > last for a in still)
    assert set(disposition.values()) == {"home", "died", "transfer", "absconded"}
    assert len(still) < 0.02 * census.len()


def test_bed_board_discharges_patients_placed_before_the_day_runs() -> None:
    """The bed leak: a patient placed (census) and due out today leaves today."""
    board = BedBoard(np.full(len(catalog.DEPARTMENTS), 2))
    day = 20_000
    board.place(Inpatient("a1", "v1", 7, 0, 0, day * 86_400 - 3600, day, 36_000, None))
    log = board.run_day(day, [], NO_MOVES, [])
    assert [r["admission_id"] for r in log.discharges] == ["a1"]
    assert not board.inpatients and board.occupancy().sum() == 0


def test_bed_board_diverts_only_when_full_and_never_admits_twice() -> None:
    icu, med, resp = (catalog.DEPT_INDEX[c] for c in ("ICU", "MED", "RESP"))
    capacity = np.zeros(len(catalog.DEPARTMENTS), dtype=np.int64)
    capacity[[icu, med, resp]] = 1
    board = BedBoard(capacity)
    day = 20_000

    def ask(i: int, person: int, sec: int, dept: int) -> Admit:
        return Admit(i, day * 86_400 + sec, person, dept, 3, 40_000, f"a{i}", f"v{i}", None, "HJH")

    requests = [ask(0, 1, 100, icu), ask(1, 1, 200, icu), ask(2, 2, 300, icu)]
    # General medicine is full after one patient; respiratory lends its bed; then nothing is left.
    requests += [ask(3, 3, 400, med), ask(4, 4, 500, med), ask(5, 5, 600, med)]
    log = board.run_day(day, requests, NO_MOVES, [])
    assert log.outcome == {
        0: "admitted", 1: "seen", 2: "diverted", 3: "admitted", 4: "admitted", 5: "diverted"
    }  # fmt: skip
    assert log.ward == {0: icu, 3: med, 4: resp}
    assert log.diverted == {2: "HJH", 5: "HJH"}
    assert [t["to_facility"] for t in log.transfers] == ["HJH", "HJH"]
    with pytest.raises(SimulationError):
        board.place(Inpatient("x", "y", 9, icu, 0, 0, day + 1, 0, None))


def test_icu_steps_down_on_its_day_and_early_for_an_emergency_before_diverting() -> None:
    icu, med, paed = (catalog.DEPT_INDEX[c] for c in ("ICU", "MED", "PAED"))
    capacity = np.zeros(len(catalog.DEPARTMENTS), dtype=np.int64)
    capacity[[icu, med]] = 2
    board = BedBoard(capacity)
    day = 20_000

    def in_icu(aid: str, until: int, ward: int, disposition: str = "home") -> None:
        # In ICU since yesterday, leaving hospital in five days.
        a = Inpatient(aid, "v", len(board.inpatients), icu, 0, 0, day + 5, 36_000, None)
        a.disposition, a.icu_until, a.step_down, a.ward_since = disposition, until, ward, day - 1
        board.place(a)

    # One due to step down today, one in two days.
    in_icu("due", day, med)
    in_icu("later", day + 2, med)
    log = board.run_day(day, [], NO_MOVES, [])
    assert [(t["admission_id"], t["to_department"], t["reason"]) for t in log.transfers] == [
        ("due", "MED", "step down from ICU")
    ]
    assert board.inpatients["due"].icu_until == -1 and board.inpatients["later"].dept == icu
    # A child due out (no paediatric bed: stays) and one who will die (never stepped down).
    board.release("later")
    in_icu("child", day, paed)
    in_icu("dying", -1, med, "died")

    def ask(i: int, on: int, sec: int) -> Admit:
        return Admit(
            i,
            on * 86_400 + sec,
            10 + i,
            icu,
            3,
            40_000,
            f"a{i}",
            f"v{i}",
            None,
            "HJH",
            icu_days=2,
            step_down=med,
        )

    # ICU is full (the child and the dying patient): the child has no paediatric bed, the dying
    # patient stays, so the first emergency is diverted; the next day a paediatric bed exists,
    # the child is stepped down early (before the ward round) and the emergency is admitted.
    log = board.run_day(day + 1, [ask(0, day + 1, 100)], NO_MOVES, [])
    assert log.outcome == {0: "diverted"} and board.inpatients["child"].dept == icu
    board.capacity[paed] = 1
    board.free[paed] = [1]
    log = board.run_day(day + 2, [ask(1, day + 2, 200)], NO_MOVES, [])
    assert log.outcome == {1: "admitted"}
    assert [(t["admission_id"], t["to_department"], t["reason"]) for t in log.transfers] == [
        ("child", "PAED", "stepped down early: ICU bed needed")
    ]
    assert board.inpatients["a1"].icu_until == day + 4 and board.inpatients["dying"].dept == icu


TIME_COLUMNS = {
    "patients": ("created_at", "updated_at"),
    "visits": ("started_at", "created_at", "updated_at"),
    "diagnoses": ("diagnosed_at", "created_at", "updated_at"),
    "allergies": ("recorded_at", "created_at", "updated_at"),
    "medications": ("created_at", "updated_at"),
    "doctor_notes": ("written_at", "created_at", "updated_at"),
    "treatments": ("performed_at", "created_at", "updated_at"),
    "visit_updates": ("ended_at", "updated_at"),
    "medication_updates": ("updated_at",),
    "allergy_updates": ("updated_at",),
    "admissions": ("admitted_at", "updated_at"),
    "discharges": ("discharged_at", "updated_at"),
    "transfers": ("transferred_at", "updated_at"),
    "transports": ("dispatched_at", "arrived_at"),
    "pharmacy_orders": ("ordered_at", "dispensed_at", "updated_at"),
}


def _census_visits(first: DayResult) -> set[str]:
    origin = day_start(first.day)
    return set(first.visits.filter(pl.col("started_at") < origin)["visit_id"].to_list())


def test_every_row_of_a_day_is_stamped_within_that_day(
    long_run: tuple[HospitalSim, list[DayResult]],
) -> None:
    _, results = long_run
    census = _census_visits(results[0])
    first = results[0]
    census_people = set(
        first.visits.filter(pl.col("visit_id").is_in(list(census)))["patient_id"].to_list()
    )
    assert census
    checked = 0
    for r in results:
        start = day_start(r.day)
        end = start + timedelta(days=1)
        for name, cols in TIME_COLUMNS.items():
            frame: pl.DataFrame = getattr(r, name)
            if r.day == SMALL.origin and "patient_id" in frame.columns:
                # The origin's census keeps its earlier admission-time records (documented rule).
                frame = frame.filter(~pl.col("patient_id").is_in(list(census_people)))
            for col in cols:
                bad = frame.filter((pl.col(col) < start) | (pl.col(col) >= end))
                assert bad.height == 0, (r.day, name, col, bad.head(3))
                checked += frame.height
        assert (r.staff_assignments["work_date"] == r.day).all()
    assert checked > 100_000


def test_clinical_events_fall_inside_their_visit(
    long_run: tuple[HospitalSim, list[DayResult]],
) -> None:
    _, results = long_run
    visits = pl.concat([r.visits.select("visit_id", "started_at") for r in results])
    ends = pl.concat([r.visit_updates.select("visit_id", "ended_at") for r in results])
    discharges = pl.concat([r.discharges.select("visit_id", "discharged_at") for r in results])
    span = visits.join(ends, on="visit_id", how="left").join(discharges, on="visit_id", how="left")
    span = span.with_columns(pl.coalesce("ended_at", "discharged_at").alias("end"))
    # Admitted visits end at discharge, the others at their visit update.
    assert span.filter(pl.col("ended_at").is_not_null() & pl.col("discharged_at").is_not_null())[
        "ended_at"
    ].equals(
        span.filter(pl.col("ended_at").is_not_null() & pl.col("discharged_at").is_not_null())[
            "discharged_at"
        ]
    )
    checked = 0
    for name, col in (
        ("diagnoses", "diagnosed_at"),
        ("treatments", "performed_at"),
        ("doctor_notes", "written_at"),
        ("medications", "created_at"),
    ):
        rows = pl.concat([getattr(r, name).select("visit_id", col) for r in results])
        joined = rows.join(span, on="visit_id", how="left")
        assert joined["started_at"].null_count() == 0
        outside = joined.filter(
            (pl.col(col) < pl.col("started_at"))
            | (pl.col("end").is_not_null() & (pl.col(col) > pl.col("end")))
        )
        assert outside.height == 0, (name, outside.head(3))
        checked += joined.height
    orders = pl.concat([r.pharmacy_orders for r in results])
    meds = pl.concat([r.medications.select("medication_id", "visit_id") for r in results])
    joined = orders.join(meds, on="medication_id").join(span, on="visit_id")
    assert joined.height == orders.height
    assert (
        joined.filter(
            (pl.col("ordered_at") < pl.col("started_at"))
            | (pl.col("dispensed_at") < pl.col("ordered_at"))
            | (pl.col("end").is_not_null() & (pl.col("dispensed_at") > pl.col("end")))
        ).height
        == 0
    )
    assert checked > 50_000


def test_transports_agree_with_their_diversions(
    long_run: tuple[HospitalSim, list[DayResult]],
) -> None:
    _, results = long_run
    for r in results:
        diversions = r.transfers.filter(pl.col("transfer_type") == "inter_facility")
        trips = r.transports.filter(pl.col("transport_type") == "inter_facility")
        assert diversions.height == trips.height
        # Pair each diversion with its trip: same patient, in time order.
        both = pl.concat(
            [
                diversions.sort("patient_id", "transferred_at").select(
                    "patient_id", "to_facility", "transferred_at"
                ),
                trips.sort("patient_id", "dispatched_at").select(
                    pl.col("patient_id").alias("trip_patient"),
                    "to_location",
                    "dispatched_at",
                    "arrived_at",
                ),
            ],
            how="horizontal",
        )
        assert (both["patient_id"] == both["trip_patient"]).all()
        assert (both["to_facility"] == both["to_location"]).all()
        assert (both["dispatched_at"] >= both["transferred_at"]).all()
        assert (both["arrived_at"] >= both["dispatched_at"]).all()


@pytest.mark.parametrize("cadence", [1, 3, 7, 60, 1440])
def test_ticks_drop_nothing(people: People, cadence: int) -> None:
    config = replace(SMALL, transfer_interval_minutes=cadence if cadence < 60 else 3)
    for r in simulate(config, people, SMALL.origin, 3):
        events = day_events(r)
        windows = list(ticks(events, cadence))
        assert len(windows) == -(-1440 // cadence)
        seen = [e.event_id for _, w in windows for e in w]
        assert len(seen) == len(events.realtime) > 0
        assert sorted(seen) == sorted(e.event_id for e in events.realtime)
        for start, w in windows:
            assert all(start <= e.occurred_at < start + timedelta(minutes=cadence) for e in w)


def test_ticks_keep_events_stamped_outside_the_day() -> None:
    day = date(2021, 3, 1)

    def ev(at: datetime, source: str) -> Event:
        return Event("transport", event_id("transport", source), source, at, "p", None, {})

    start = day_start(day)
    stray = [
        ev(start - timedelta(minutes=5), "early"),
        ev(start + timedelta(hours=3), "mid"),
        ev(start + timedelta(days=1, minutes=2), "late"),
    ]
    empty = pl.DataFrame()
    events = DayEvents(day, stray, BatchRecords(empty, empty, empty, empty, empty, empty))
    windows = list(ticks(events, 3))
    got = [e.source_id for _, w in windows for e in w]
    assert sorted(got) == ["early", "late", "mid"]
    assert windows[0][1][0].source_id == "early"
    assert windows[-1][1][-1].source_id == "late"
    assert windows[0][0] == datetime(2021, 3, 1, tzinfo=UTC)
    with pytest.raises(SimulationError):
        next(ticks(events, 0))


def test_inside_keeps_order_and_limit() -> None:
    start = np.array([0, 100, 1000])
    offset = np.array([50, 90, 10])
    out = inside(start, offset, 100, np.array([1000, 150, 5000]))
    assert out.tolist() == [50, 100 + 45, 1010]
    assert (out >= start).all()


def test_a_pickled_sim_resumes_with_the_same_bytes(people: People) -> None:
    import pickle

    sim = HospitalSim(SMALL, people)
    for _ in range(3):
        sim.step()
    copy = pickle.loads(pickle.dumps(sim))
    a, b = sim.step(), copy.step()
    for name in ("visits", "admissions", "discharges", "transfers", "doctor_notes"):
        assert getattr(a, name).equals(getattr(b, name)), name

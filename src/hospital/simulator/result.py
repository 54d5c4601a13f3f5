"""What one simulated day produces (:class:`DayResult`) and changes scheduled for later days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import polars as pl

from hospital.simulator.staff import StaffChanges
from hospital.simulator.timeline import TS, US, Schema


@dataclass
class DayResult:
    """Everything one simulated day produced (EHR changes and the day's batch records)."""

    day: date
    # EHR inserts
    patients: pl.DataFrame
    visits: pl.DataFrame
    diagnoses: pl.DataFrame
    allergies: pl.DataFrame
    medications: pl.DataFrame
    doctor_notes: pl.DataFrame
    treatments: pl.DataFrame
    # EHR updates
    visit_updates: pl.DataFrame
    medication_updates: pl.DataFrame
    allergy_updates: pl.DataFrame
    # EHR deletes (entered in error)
    deleted_diagnoses: pl.DataFrame
    deleted_notes: pl.DataFrame
    # batch / stream records
    admissions: pl.DataFrame
    discharges: pl.DataFrame
    transfers: pl.DataFrame
    transports: pl.DataFrame
    pharmacy_orders: pl.DataFrame
    staff_assignments: pl.DataFrame
    staff_changes: StaffChanges
    occupancy: pl.DataFrame  # per department: capacity, peak and end-of-day occupancy
    expected_visits: float = 0.0
    # EHR: deaths of EHR patients (patients.deceased_at)
    patient_updates: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(schema=PATIENT_UPDATE_SCHEMA)
    )
    # The population: people born and people who died today (in the hospital or not)
    births: pl.DataFrame = field(default_factory=pl.DataFrame)
    deaths: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DEATH_SCHEMA))

    def ehr_row_count(self) -> int:
        frames = (
            self.patients, self.visits, self.diagnoses, self.allergies, self.medications,
            self.doctor_notes, self.treatments, self.visit_updates, self.medication_updates,
            self.allergy_updates, self.deleted_diagnoses, self.deleted_notes,
            self.patient_updates,
        )  # fmt: skip
        return sum(f.height for f in frames)


@dataclass
class Pending:
    """Changes decided on one day that happen on a later day."""

    visit_updates: list[pl.DataFrame] = field(default_factory=list)
    medication_updates: list[pl.DataFrame] = field(default_factory=list)
    allergy_updates: list[pl.DataFrame] = field(default_factory=list)
    deleted_diagnoses: list[pl.DataFrame] = field(default_factory=list)
    deleted_notes: list[pl.DataFrame] = field(default_factory=list)


@dataclass
class Agenda:
    """Pending changes by day number."""

    days: dict[int, Pending] = field(default_factory=dict)

    def at(self, day_num: int) -> Pending:
        return self.days.setdefault(day_num, Pending())

    def take(self, day_num: int) -> Pending:
        return self.days.pop(day_num, Pending())


PATIENT_UPDATE_SCHEMA: Schema = {"patient_id": pl.String, "deceased_at": TS, "updated_at": TS}
DEATH_SCHEMA: Schema = {
    "person_id": pl.String,
    "died_at": TS,
    "age": pl.Int64,
    "sex": pl.String,
    "place": pl.String,  # hospital | community
    "department_code": pl.String,
}
VISIT_UPDATE_SCHEMA: Schema = {
    "visit_id": pl.String,
    "ended_at": TS,
    "status": pl.String,
    "updated_at": TS,
}
MED_UPDATE_SCHEMA: Schema = {
    "medication_id": pl.String,
    "end_date": pl.Date,
    "status": pl.String,
    "updated_at": TS,
}
ALLERGY_UPDATE_SCHEMA: Schema = {
    "allergy_id": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "updated_at": TS,
}
DELETE_DX_SCHEMA: Schema = {"diagnosis_id": pl.String}
DELETE_NOTE_SCHEMA: Schema = {"note_id": pl.String}
ADMISSION_SCHEMA: Schema = {
    "admission_id": pl.String,
    "patient_id": pl.String,
    "visit_id": pl.String,
    "department_code": pl.String,
    "bed_number": pl.Int32,
    "admitted_at": TS,
    "expected_discharge_date": pl.Date,
    "status": pl.String,
    "updated_at": TS,
}
DISCHARGE_SCHEMA: Schema = {
    "admission_id": pl.String,
    "patient_id": pl.String,
    "visit_id": pl.String,
    "department_code": pl.String,
    "discharged_at": TS,
    "discharge_disposition": pl.String,
    "status": pl.String,
    "updated_at": TS,
}
TRANSFER_SCHEMA: Schema = {
    "transfer_id": pl.String,
    "patient_id": pl.String,
    "admission_id": pl.String,
    "transfer_type": pl.String,
    "from_department": pl.String,
    "to_department": pl.String,
    "from_facility": pl.String,
    "to_facility": pl.String,
    "reason": pl.String,
    "transferred_at": TS,
    "updated_at": TS,
}


def concat(frames: list[pl.DataFrame], schema: Schema) -> pl.DataFrame:
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)


def visit_update_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=VISIT_UPDATE_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "visit_id",
        (pl.col("ended_at") * US).cast(TS),
        "status",
        (pl.col("ended_at") * US).cast(TS).alias("updated_at"),
    )

"""The batch drop layout, the file specifications and the manifest (pure, no database).

A drop is one folder under ``lake/batch``: ``initial/`` (the initial load) or
``date=YYYY-MM-DD/`` (one simulated day). Each holds CSV files with a header row and a
``manifest.json`` listing every file with its row count and SHA-256. A :class:`FileSpec` says
which columns a file has, how each is validated and which table it lands in.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from hospital.errors import IngestError
from hospital.simulator import catalog

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
INITIAL = "initial"
DATE_PREFIX = "date="

ColType = Literal["uuid", "text", "int", "date", "ts"]
Merge = Literal["upsert", "admissions", "discharges"]

# Domain values shared with the simulator; a value outside them is quarantined, not loaded.
SEXES = ("M", "F")
ROLES = ("doctor", "surgeon", "nurse", "admin", "allied_health", "support")
DOCTOR_ROLES = ("doctor", "surgeon")
STAFF_STATUSES = ("active", "retired")
SHIFTS = ("day", "night")
TRANSFER_TYPES = ("inter_department", "inter_facility", "ward_movement")
TRANSPORT_TYPES = ("emergency", "inter_facility")
PRIORITIES = ("P1", "P2", "P3")
FACILITIES = (catalog.FACILITY_CODE, *(code for code, _ in catalog.OTHER_FACILITIES))
# Departments are checked against the loaded ``departments`` table; service areas are places a
# patient visits without a bed (theatre, radiology ...), valid only as a transfer destination.
DEPARTMENTS_SQL = "SELECT department_code FROM departments"
STAFF_SQL = "SELECT staff_id FROM staff"


@dataclass(frozen=True)
class Col:
    """One CSV column: type, whether it must be present, allowed values, references."""

    name: str
    type: ColType = "text"
    required: bool = True
    domain: tuple[str, ...] | None = None
    pattern: str | None = None  # a POSIX regex the text must match
    ref: str | None = None  # SQL returning the allowed values (a reference check)
    ref_extra: tuple[str, ...] = ()  # values allowed besides those of ``ref``
    ref_self: str | None = None  # a column of the same file whose values are allowed too
    positive: bool = False
    load: bool = True  # False: validated but not a column of the target table


@dataclass(frozen=True)
class FileSpec:
    """A batch file: its columns in header order and the table its valid rows merge into."""

    name: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Col, ...]
    merge: Merge = "upsert"
    # bed_events produced by this file: (kind, source id column, time column, department column)
    event: tuple[str, str, str, str | None] | None = None
    touch_updated_at: bool = False  # the table has updated_at but the file does not

    @property
    def header(self) -> str:
        return ",".join(c.name for c in self.columns)

    def column(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


def _person_cols(id_name: str) -> tuple[Col, ...]:
    return (
        Col(id_name, "uuid"),
        Col("national_id", pattern="^[0-9]{13}$"),
        Col("first_name"),
        Col("last_name"),
        Col("sex", domain=SEXES),
        Col("birth_date", "date"),
        Col("population_group", required=False),
        Col("address_line", required=False),
        Col("suburb", required=False),
        Col("city", required=False),
        Col("province", required=False),
        Col("postal_code", required=False),
        Col("phone", required=False),
    )


def _staff_spec(name: str, roles: tuple[str, ...]) -> FileSpec:
    return FileSpec(
        name=name,
        table="staff",
        key=("staff_id",),
        columns=(
            Col("staff_id", "uuid"),
            Col("person_id", "uuid", required=False),
            Col("national_id", pattern="^[0-9]{13}$"),
            Col("first_name"),
            Col("last_name"),
            Col("sex", domain=SEXES),
            Col("birth_date", "date"),
            Col("role", domain=roles),
            Col("specialty", required=False),
            Col("department_code", required=False, ref=DEPARTMENTS_SQL),
            Col("experience_level", required=False),
            Col("hire_date", "date"),
            Col("retire_date", "date", required=False),
            Col("status", domain=STAFF_STATUSES),
            # A replacement may be hired in the same file: its id is allowed too.
            Col("replaced_by", "uuid", required=False, ref=STAFF_SQL, ref_self="staff_id"),
        ),
        touch_updated_at=True,
    )


DEPARTMENTS = FileSpec(
    name="departments.csv",
    table="departments",
    key=("department_code",),
    columns=(
        Col("department_code", pattern="^[A-Z0-9_]{1,32}$"),
        Col("name"),
        Col("kind"),
        Col("bed_capacity", "int"),
    ),
    touch_updated_at=True,
)
STAFF = _staff_spec("staff.csv", ROLES)
DOCTORS = _staff_spec("doctors.csv", DOCTOR_ROLES)
PEOPLE = FileSpec(
    name="people.csv", table="people", key=("person_id",), columns=_person_cols("person_id")
)
CENSUS = FileSpec(
    name="hospital_patients.csv",
    table="initial_census",
    key=("patient_id",),
    columns=(*_person_cols("patient_id"), Col("created_at", "ts"), Col("updated_at", "ts")),
)
STAFF_ASSIGNMENTS = FileSpec(
    name="staff_assignments.csv",
    table="staff_assignments",
    key=("work_date", "staff_id", "shift"),
    columns=(
        Col("work_date", "date"),
        Col("staff_id", "uuid", ref=STAFF_SQL),
        Col("shift", domain=SHIFTS),
        Col("department_code", ref=DEPARTMENTS_SQL),
    ),
)
PATIENT = Col("patient_id", "uuid", ref="people")  # "people": checked only once people are loaded
ADMISSIONS = FileSpec(
    name="admissions.csv",
    table="admissions",
    key=("admission_id",),
    columns=(
        Col("admission_id", "uuid"),
        PATIENT,
        Col("visit_id", "uuid", required=False),
        Col("department_code", ref=DEPARTMENTS_SQL),
        Col("bed_number", "int", required=False, positive=True),
        Col("admitted_at", "ts"),
        Col("expected_discharge_date", "date", required=False),
        Col("status", domain=("admitted", "discharged")),
        Col("updated_at", "ts"),
    ),
    merge="admissions",
    event=("admission", "admission_id", "admitted_at", "department_code"),
)
DISCHARGES = FileSpec(
    name="discharges.csv",
    table="admissions",
    key=("admission_id",),
    columns=(
        Col("admission_id", "uuid", ref="SELECT admission_id FROM admissions"),
        PATIENT,
        Col("visit_id", "uuid", required=False, load=False),
        Col("department_code", ref=DEPARTMENTS_SQL, load=False),
        Col("discharged_at", "ts"),
        Col("discharge_disposition", required=False),
        Col("status", domain=("discharged",)),
        Col("updated_at", "ts"),
    ),
    merge="discharges",
    event=("discharge", "admission_id", "discharged_at", "department_code"),
)
TRANSFERS = FileSpec(
    name="transfers.csv",
    table="transfers",
    key=("transfer_id",),
    columns=(
        Col("transfer_id", "uuid"),
        PATIENT,
        Col("admission_id", "uuid", required=False),
        Col("transfer_type", domain=TRANSFER_TYPES),
        Col("from_department", required=False, ref=DEPARTMENTS_SQL),
        Col(
            "to_department",
            required=False,
            ref=DEPARTMENTS_SQL,
            ref_extra=catalog.SERVICE_AREAS,
        ),
        Col("from_facility", required=False, domain=FACILITIES),
        Col("to_facility", required=False, domain=FACILITIES),
        Col("reason", required=False),
        Col("transferred_at", "ts"),
        Col("updated_at", "ts"),
    ),
    event=("transfer", "transfer_id", "transferred_at", "to_department"),
)
TRANSPORTS = FileSpec(
    name="transports.csv",
    table="transports",
    key=("transport_id",),
    columns=(
        Col("transport_id", "uuid"),
        PATIENT,
        Col("visit_id", "uuid", required=False),
        Col("transport_type", domain=TRANSPORT_TYPES),
        Col("priority", domain=PRIORITIES),
        Col("unit", required=False),
        Col("from_location", required=False),
        Col("to_location", required=False),
        Col("dispatched_at", "ts"),
        Col("arrived_at", "ts"),
    ),
    event=("transport", "transport_id", "arrived_at", None),
)
PHARMACY_ORDERS = FileSpec(
    name="pharmacy_orders.csv",
    table="pharmacy_orders",
    key=("order_id",),
    columns=(
        Col("order_id", "uuid"),
        PATIENT,
        Col("medication_id", "uuid", required=False),
        Col("drug_code", pattern="^[A-Z0-9_]{1,16}$"),
        Col("quantity", "int", positive=True),
        Col("ordered_by", "uuid", required=False, ref=STAFF_SQL),
        Col("ordered_at", "ts"),
        Col("dispensed_at", "ts", required=False),
        Col("status", domain=("ordered", "dispensed", "cancelled")),
        Col("updated_at", "ts"),
    ),
)

# Load order inside a drop: referenced tables first.
INITIAL_FILES: tuple[FileSpec, ...] = (
    DEPARTMENTS,
    STAFF,
    DOCTORS,
    PEOPLE,
    CENSUS,
    STAFF_ASSIGNMENTS,
)
DAY_FILES: tuple[FileSpec, ...] = (
    PEOPLE,  # the day's births (only when there were any): later files may name the newborns
    STAFF,  # the day's hires and retirements (only when there were any)
    STAFF_ASSIGNMENTS,
    ADMISSIONS,
    DISCHARGES,
    TRANSFERS,
    TRANSPORTS,
    PHARMACY_ORDERS,
)
SPECS: dict[str, FileSpec] = {s.name: s for s in (*INITIAL_FILES, *DAY_FILES)}


def batch_root(lake_path: Path) -> Path:
    return lake_path / "batch"


def day_folder(lake_path: Path, day: date) -> Path:
    return batch_root(lake_path) / f"{DATE_PREFIX}{day.isoformat()}"


def drop_day(name: str) -> date | None:
    """The simulated day of a drop folder name (None for the initial load)."""
    if name == INITIAL:
        return None
    if not name.startswith(DATE_PREFIX):
        raise IngestError(f"{name}: not a batch drop folder (initial or date=YYYY-MM-DD)")
    try:
        return datetime.strptime(name[len(DATE_PREFIX) :], "%Y-%m-%d").date()  # noqa: DTZ007
    except ValueError:
        raise IngestError(f"{name}: not a batch drop folder (bad date)") from None


def list_drops(lake_path: Path) -> list[Path]:
    """Complete drop folders, initial load first, then days in order.

    Temporary folders (leading dot) are a writer still at work and never listed.
    """
    root = batch_root(lake_path)
    if not root.is_dir():
        return []
    drops = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(drops, key=lambda p: (p.name != INITIAL, p.name))


def specs_for(drop_name: str) -> tuple[FileSpec, ...]:
    return INITIAL_FILES if drop_name == INITIAL else DAY_FILES


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    file: str
    rows: int
    sha256: str


@dataclass
class Manifest:
    drop: str
    schema_version: int = SCHEMA_VERSION
    files: dict[str, ManifestEntry] = field(default_factory=dict)

    def to_json(self) -> str:
        body = {
            "drop": self.drop,
            "schema_version": self.schema_version,
            "files": [
                {"file": e.file, "rows": e.rows, "sha256": e.sha256} for e in self.files.values()
            ],
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str, where: str) -> Manifest:
        """A manifest from JSON text; ``where`` names the file in error messages."""
        try:
            body = json.loads(text)
            version = body["schema_version"]
            entries = [
                ManifestEntry(str(e["file"]), int(e["rows"]), str(e["sha256"]))
                for e in body["files"]
            ]
            drop = str(body.get("drop", ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise IngestError(f"{where}: not a valid manifest ({exc})") from None
        if version != SCHEMA_VERSION:
            raise IngestError(
                f"{where}: schema_version {version!r} is not supported (expected {SCHEMA_VERSION})"
            )
        for e in entries:
            if not re.fullmatch(r"[0-9a-f]{64}", e.sha256) or e.rows < 0 or "/" in e.file:
                raise IngestError(f"{where}: bad entry for {e.file!r}")
        return cls(drop=drop, schema_version=version, files={e.file: e for e in entries})

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.exists():
            raise IngestError(f"{path}: manifest missing")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IngestError(f"{path}: unreadable manifest ({exc})") from None
        return cls.parse(text, str(path))


def check_header(path: Path, spec: FileSpec) -> None:
    """Refuse an empty file, a wrong or missing header, or a file cut short (no final newline)."""
    size = path.stat().st_size
    if size == 0:
        raise IngestError(f"{path}: empty file (not even a header)")
    with path.open("rb") as fh:
        first = fh.readline(64 * 1024)
        fh.seek(size - 1)
        last = fh.read(1)
    try:
        header = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: header is not UTF-8") from None
    if header != spec.header:
        raise IngestError(
            f"{path}: wrong or missing header: expected {spec.header!r}, got {header!r}"
        )
    if last != b"\n":
        raise IngestError(f"{path}: truncated (the last line does not end with a newline)")

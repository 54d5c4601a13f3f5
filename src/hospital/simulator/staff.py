"""Staff lifecycle: hiring from the population, retirement, replacement and daily rosters.

Staff are people of the population (``person_idx``). Everyone retires on the day they reach the
retirement age and is replaced the same day by a new hire from the population with the same role,
specialty and department; retired staff are never rostered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.errors import SimulationError
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People
from hospital.simulator.timeline import day_number

if TYPE_CHECKING:
    from hospital.simulator.registry import Registry

from hospital.simulator.vectors import ascii_matrix_to_series, child_rng, random_uuids

NEVER = -(10**6)  # registry.NEVER: alive

STREAM_STAFF = 2
ROLE_MIN_AGE: dict[str, int] = {
    "doctor": 24,
    "surgeon": 30,
    "nurse": 21,
    "allied_health": 22,
    "admin": 18,
    "support": 18,
}
NEW_HIRE_AGE_SPAN = 15  # replacements are hired within this many years of the role's minimum age
CLINICAL_ROLES = frozenset({"doctor", "surgeon", "nurse"})
NIGHT_SHARE = 0.3  # share of a ward group on duty that works the night shift
STAFF_COLUMNS = (
    "staff_id",
    "person_id",
    "national_id",
    "first_name",
    "last_name",
    "sex",
    "birth_date",
    "role",
    "specialty",
    "department_code",
    "experience_level",
    "hire_date",
    "retire_date",
    "status",
    "replaced_by",
)


def staffing_plan(config: SimConfig) -> list[tuple[str, str, str]]:
    """(role, specialty, department) of every post, from the world's planned beds."""
    from hospital.simulator.capacity import plan_beds
    from hospital.simulator.capacity import staffing_plan as plan

    return plan(plan_beds(config).tolist())


def nth_birthday(birth: npt.NDArray[np.int64], years: int) -> npt.NDArray[np.int64]:
    """Day number of the ``years``-th birthday (29 February babies: 1 March in common years)."""
    b = birth.astype("datetime64[D]")
    month = b.astype("datetime64[M]")
    target = (month + np.timedelta64(12 * years, "M")).astype("datetime64[D]") + (
        b - month.astype("datetime64[D]")
    )
    return np.asarray(target.astype(np.int64), dtype=np.int64)


def experience_level(years: npt.NDArray[np.float64]) -> npt.NDArray[np.str_]:
    return np.select(
        [years < 3, years < 8, years < 15],
        ["junior", "intermediate", "senior"],
        default="principal",
    )


@dataclass
class StaffChanges:
    """What one day changed: indexes into the staff table."""

    retired: list[int] = field(default_factory=list)
    hired: list[int] = field(default_factory=list)


class Staff:
    """The staff table as parallel arrays; rows are only ever appended (history is kept)."""

    def __init__(self, config: SimConfig, people: People) -> None:
        self.config = config
        self.people = people
        self.person_idx = np.zeros(0, dtype=np.int64)
        self.role: list[str] = []
        self.specialty: list[str] = []
        self.dept: list[str] = []
        self.staff_id: list[str] = []
        self.hire_day = np.zeros(0, dtype=np.int64)
        self.retire_on = np.zeros(0, dtype=np.int64)  # the retirement birthday
        self.retire_day = np.zeros(0, dtype=np.int64)  # -1 while active
        self.replaced_by = np.zeros(0, dtype=np.int64)  # -1 unless retired
        self.offset = np.zeros(0, dtype=np.int64)  # roster phase
        self._taken: set[int] = set()
        self.registry: Registry | None = None  # set by the simulator: the dead are not hired
        self._hire_initial()

    # --- hiring ---------------------------------------------------------------------------
    def _candidates(
        self, rng: np.random.Generator, n: int, day: int, min_age: int, max_age: int
    ) -> npt.NDArray[np.int64]:
        """``n`` distinct people aged [min_age, max_age) on ``day`` and not yet staff."""
        people = self.people
        chosen: list[int] = []
        for _ in range(50):
            draw = rng.integers(0, people.size, size=max(64, n * 8))
            age_days = day - people.birth[draw]
            ok = (age_days >= min_age * 365.25 + 1) & (age_days < max_age * 365.25 - 1)
            for idx in draw[ok].tolist():
                if self.registry is not None and self.registry.died[idx] != NEVER:
                    continue
                if idx not in self._taken:
                    self._taken.add(idx)
                    chosen.append(idx)
                    if len(chosen) == n:
                        return np.array(chosen, dtype=np.int64)
        raise SimulationError(
            f"the population of {people.size} has too few people aged {min_age}-{max_age} to hire"
        )

    def _append(
        self,
        rng: np.random.Generator,
        posts: list[tuple[str, str, str]],
        people_idx: npt.NDArray[np.int64],
        hire_day: npt.NDArray[np.int64],
    ) -> list[int]:
        start = len(self.role)
        n = len(posts)
        ids = ascii_matrix_to_series("staff_id", random_uuids(rng, n)).to_list()
        self.person_idx = np.r_[self.person_idx, people_idx]
        self.role += [p[0] for p in posts]
        self.specialty += [p[1] for p in posts]
        self.dept += [p[2] for p in posts]
        self.staff_id += ids
        self.hire_day = np.r_[self.hire_day, hire_day]
        self.retire_on = np.r_[
            self.retire_on, nth_birthday(self.people.birth[people_idx], self.config.retirement_age)
        ]
        self.retire_day = np.r_[self.retire_day, np.full(n, -1, dtype=np.int64)]
        self.replaced_by = np.r_[self.replaced_by, np.full(n, -1, dtype=np.int64)]
        self.offset = np.r_[self.offset, rng.integers(0, 7, size=n)]
        return list(range(start, start + n))

    def _hire_initial(self) -> None:
        rng = child_rng(self.config.seed, STREAM_STAFF, 0)
        origin = day_number(self.config.origin)
        posts = staffing_plan(self.config)
        by_role: dict[str, list[tuple[str, str, str]]] = {}
        for post in posts:
            by_role.setdefault(post[0], []).append(post)
        for role, role_posts in by_role.items():
            min_age = ROLE_MIN_AGE[role]
            idx = self._candidates(
                rng, len(role_posts), origin, min_age, self.config.retirement_age
            )
            age_years = (origin - self.people.birth[idx]) / 365.25
            service = rng.random(idx.shape[0]) * np.minimum(age_years - min_age, 40)
            hire = origin - (service * 365.25).astype(np.int64)
            self._append(rng, role_posts, idx, hire)

    def person_set(self) -> set[int]:
        """Person indexes of everyone ever hired (their deaths are not simulated)."""
        return self._taken

    # --- the daily step ----------------------------------------------------------------------
    def active_mask(self) -> npt.NDArray[np.bool_]:
        return self.retire_day < 0

    def advance(self, day: date) -> StaffChanges:
        """Retire whoever reached the retirement age by ``day``; hire their replacements."""
        d = day_number(day)
        due = np.flatnonzero((self.retire_day < 0) & (self.retire_on <= d))
        changes = StaffChanges()
        if due.shape[0] == 0:
            return changes
        rng = child_rng(self.config.seed, STREAM_STAFF, d)
        posts = [(self.role[i], self.specialty[i], self.dept[i]) for i in due.tolist()]
        hired_idx: list[int] = []
        for post in posts:
            min_age = ROLE_MIN_AGE[post[0]]
            hired_idx.extend(
                self._candidates(rng, 1, d, min_age, min_age + NEW_HIRE_AGE_SPAN).tolist()
            )
        new_rows = self._append(
            rng, posts, np.array(hired_idx, dtype=np.int64), np.full(len(posts), d, dtype=np.int64)
        )
        self.retire_day[due] = d
        self.replaced_by[due] = np.array(new_rows, dtype=np.int64)
        changes.retired = due.tolist()
        changes.hired = new_rows
        return changes

    def roster(self, day: date) -> pl.DataFrame:
        """Who works on ``day`` and on which shift.

        Doctors, surgeons, nurses and support staff rotate five days in seven within their ward
        and role, so a group of seven or more always has five on duty; of those on duty the
        first ~30 % in a weekly-rotating order take the night shift, so every ward with a group
        of two or more on duty has both a day and a night. Admin and allied staff work weekdays.
        """
        d = day_number(day)
        active = np.flatnonzero(self.active_mask())
        weekday = (d + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        role = np.array(self.role, dtype=object)[active]
        dept = np.array(self.dept, dtype=object)[active]
        office = np.isin(role, ["admin", "allied_health"])
        # Rank of each member within its (ward, role) group, in hiring order.
        key = np.char.add(dept.astype(str), np.char.add("/", role.astype(str)))
        _, group = np.unique(key, return_inverse=True)
        order = np.lexsort((active, group))
        rank = np.empty(active.shape[0], dtype=np.int64)
        starts = np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]
        sizes = np.diff(np.r_[starts, order.shape[0]])
        rank[order] = np.arange(order.shape[0]) - np.repeat(starts, sizes)
        size = np.bincount(group)[group]
        works = np.where(office, weekday < 5, (d + rank) % 7 < 5)
        # Night shift: rotate weekly through the group; the first ~30 % of those on duty.
        on = np.flatnonzero(works & ~office)
        night = np.zeros(active.shape[0], dtype=np.bool_)
        if on.shape[0]:
            turn = (rank[on] - d // 7) % size[on]
            o = np.lexsort((turn, group[on]))
            g_sorted = group[on][o]
            st = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
            cnt = np.diff(np.r_[st, o.shape[0]])
            pos = np.arange(o.shape[0]) - np.repeat(st, cnt)
            n_night = np.ceil(np.repeat(cnt, cnt) * NIGHT_SHARE).astype(np.int64)
            night[on[o]] = pos < n_night
        rows = active[works]
        return pl.DataFrame(
            {
                "work_date": pl.Series([day] * rows.shape[0], dtype=pl.Date),
                "staff_id": pl.Series([self.staff_id[i] for i in rows.tolist()], dtype=pl.String),
                "shift": pl.Series(
                    np.where(night[works], "night", "day").tolist(), dtype=pl.String
                ),
                "department_code": pl.Series(dept[works].tolist(), dtype=pl.String),
                "role": pl.Series(role[works].tolist(), dtype=pl.String),
            }
        )

    def frame(self, as_of: date) -> pl.DataFrame:
        """Every staff row ever hired, in the shape of ``hospital.staff`` (plus person_id)."""
        d = day_number(as_of)
        end = np.where(self.retire_day >= 0, self.retire_day, d)
        years = (end - self.hire_day) / 365.25
        people = self.people.frame[self.person_idx.tolist()]
        replaced = [self.staff_id[j] if j >= 0 else None for j in self.replaced_by.tolist()]
        return pl.DataFrame(
            {
                "staff_id": pl.Series(self.staff_id, dtype=pl.String),
                "person_id": people["person_id"],
                "national_id": people["national_id"],
                "first_name": people["first_name"],
                "last_name": people["last_name"],
                "sex": people["sex"],
                "birth_date": people["birth_date"],
                "role": pl.Series(self.role, dtype=pl.String),
                "specialty": pl.Series(self.specialty, dtype=pl.String),
                "department_code": pl.Series(self.dept, dtype=pl.String),
                "experience_level": pl.Series(experience_level(years).tolist(), dtype=pl.String),
                "hire_date": pl.Series(self.hire_day.astype(np.int32)).cast(pl.Date),
                "retire_date": pl.Series(
                    np.where(self.retire_day >= 0, self.retire_day, 0).astype(np.int32)
                )
                .cast(pl.Date)
                .zip_with(pl.Series(self.retire_day >= 0), pl.Series([None], dtype=pl.Date)),
                "status": pl.Series(
                    np.where(self.retire_day >= 0, "retired", "active").tolist(), dtype=pl.String
                ),
                "replaced_by": pl.Series(replaced, dtype=pl.String),
            }
        )

"""The living population: the initial people plus everyone born since, and what the simulator
remembers about each person (alive, EHR patient, chronic conditions, long-term drugs, allergies,
last delivery).

Person index ``i < base`` is row ``i`` of the population file; newborns get the next indexes and
their own rows (``newborn_frame``). Arrays grow by doubling, so a birth costs O(1) amortised.

Deaths: a Poisson process per person with a rate by age and sex (a life table close to Stats SA's
2022 mid-year estimates), drawn by thinning: candidates at the highest rate, each kept with
probability rate(age, sex) / highest rate. Cost per day is proportional to the deaths, not to the
population, which keeps a 5,000,000-person day fast.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.simulator import names
from hospital.simulator.population import PEOPLE_COLUMNS, People, choose_names
from hospital.simulator.sa_id import SEQ_PER_SEX, assemble_ids, yymmdd_numbers
from hospital.simulator.timeline import I64
from hospital.simulator.vectors import ascii_matrix_to_series, digits, random_uuids

NEVER = -(10**6)
# Deaths per 1,000 a year by age (upper bounds of the bands), female and male.
MORTALITY_AGES = np.array([1, 5, 15, 25, 35, 45, 55, 65, 75, 85, 200])
MORTALITY_F = np.array([24.0, 2.0, 0.8, 1.6, 4.5, 7.0, 10.0, 16.0, 28.0, 60.0, 150.0])
MORTALITY_M = np.array([28.0, 2.2, 1.0, 3.2, 7.0, 11.0, 15.0, 25.0, 42.0, 85.0, 170.0])
MALE_AT_BIRTH = 0.508  # sex ratio at birth ~103 boys per 100 girls


def annual_mortality(age: I64, male: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    band = np.searchsorted(MORTALITY_AGES, age, side="right")
    band = np.minimum(band, MORTALITY_AGES.shape[0] - 1)
    return np.asarray(np.where(male, MORTALITY_M[band], MORTALITY_F[band]) / 1000.0)


def _grow(a: npt.NDArray[np.generic], size: int, fill: object) -> npt.NDArray[np.generic]:
    if size <= a.shape[0]:
        return a
    out = np.full(max(size, int(a.shape[0] * 1.5) + 1024), fill, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


class Registry:
    """Per-person state, for the initial population and the newborns."""

    def __init__(self, people: People) -> None:
        self.people = people
        self.base = people.size
        self.n = people.size
        self.birth = people.birth.astype(np.int32)
        self.male = people.male.copy()
        self.died = np.full(self.n, NEVER, dtype=np.int32)  # day number of death, NEVER if alive
        self.seen = np.zeros(self.n, dtype=np.bool_)  # an EHR patient already
        self.chronic = np.zeros(self.n, dtype=np.uint8)  # clinical.CHRONIC flags
        self.long_term = np.zeros(self.n, dtype=np.uint16)  # formulary.LONG_TERM_BIT drugs held
        self.allergy = np.zeros(self.n, dtype=np.uint16)  # bit i: catalog.ALLERGENS[i]
        self.last_delivery = np.full(self.n, NEVER, dtype=np.int32)
        self.newborns: list[pl.DataFrame] = []
        self.newborn_ids: list[str] = []
        self._seq_day = NEVER  # ID sequences already given to newborns of that day
        self._seq_taken: set[int] = set()

    # --- pickling (the scheduler snapshots the simulator between days) -------------------------
    def __getstate__(self) -> dict[str, object]:
        # Newborn rows travel as Arrow IPC bytes: polars' own DataFrame serialisation can stall
        # when called from a process with other threads (seen in the scheduler's snapshots).
        state = self.__dict__.copy()
        buf = io.BytesIO()
        self.newborn_frame().write_ipc(buf)
        state["newborns"] = buf.getvalue()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        blob = state.pop("newborns")
        self.__dict__.update(state)
        frame = pl.read_ipc(io.BytesIO(blob))  # type: ignore[arg-type]
        self.newborns = [frame] if frame.height else []

    # --- lookups -------------------------------------------------------------------------------
    def alive(self, idx: I64, day_num: int) -> npt.NDArray[np.bool_]:
        return np.asarray(self.died[idx] == NEVER, dtype=np.bool_) | (self.died[idx] > day_num)

    def person_ids(self, idx: npt.NDArray[np.int64] | list[int]) -> pl.Series:
        idx = np.asarray(idx, dtype=np.int64)
        new = idx >= self.base
        base = self.people.frame["person_id"].gather(pl.Series(np.where(new, 0, idx)))
        if not new.any():
            return base.alias("person_id")
        values = base.to_list()
        for j in np.flatnonzero(new).tolist():
            values[j] = self.newborn_ids[int(idx[j]) - self.base]
        return pl.Series("person_id", values, dtype=pl.String)

    def rows(self, idx: npt.NDArray[np.int64]) -> pl.DataFrame:
        """Population rows (``PEOPLE_COLUMNS``) of these people, in order."""
        new = idx >= self.base
        if not new.any():
            base: pl.DataFrame = self.people.frame[idx.tolist()]
            return base
        extra = pl.concat(self.newborns) if len(self.newborns) > 1 else self.newborns[0]
        self.newborns = [extra]
        both = pl.concat(
            [self.people.frame[idx[~new].tolist()], extra[(idx[new] - self.base).tolist()]]
        )
        order = np.argsort(np.r_[np.flatnonzero(~new), np.flatnonzero(new)], kind="stable")
        out: pl.DataFrame = both[order.tolist()]
        return out

    def newborn_frame(self) -> pl.DataFrame:
        if not self.newborns:
            return pl.DataFrame(schema=self.people.frame.schema)
        if len(self.newborns) > 1:
            self.newborns = [pl.concat(self.newborns)]
        out: pl.DataFrame = self.newborns[0]
        return out

    # --- births ----------------------------------------------------------------------------------
    def register_births(
        self,
        rng: np.random.Generator,
        day_num: int,
        mothers: I64,
    ) -> I64:
        """New people born on ``day_num``; ``mothers`` (person indexes, -1 when unknown) give the
        newborn its surname, population group and address. Returns the newborns' indexes."""
        k = mothers.shape[0]
        if k == 0:
            return np.zeros(0, dtype=np.int64)
        male = np.asarray(rng.random(k) < MALE_AT_BIRTH, dtype=np.bool_)
        start = self.n
        idx = np.arange(start, start + k, dtype=np.int64)
        size = start + k
        self.birth = _grow(self.birth, size, 0)  # type: ignore[assignment]
        self.male = _grow(self.male, size, False)  # type: ignore[assignment]
        self.died = _grow(self.died, size, NEVER)  # type: ignore[assignment]
        self.seen = _grow(self.seen, size, False)  # type: ignore[assignment]
        self.chronic = _grow(self.chronic, size, 0)  # type: ignore[assignment]
        self.long_term = _grow(self.long_term, size, 0)  # type: ignore[assignment]
        self.allergy = _grow(self.allergy, size, 0)  # type: ignore[assignment]
        self.last_delivery = _grow(self.last_delivery, size, NEVER)  # type: ignore[assignment]
        self.birth[idx] = day_num
        self.male[idx] = male
        self.n = size
        frame = self._newborn_rows(rng, day_num, male, mothers)
        self.newborns.append(frame)
        self.newborn_ids += frame["person_id"].to_list()
        return idx

    def _sequences(
        self, rng: np.random.Generator, day_num: int, male: npt.NDArray[np.bool_]
    ) -> I64:
        """ID sequence numbers unused by anyone sharing the newborns' YYMMDD (a century ago too)."""
        yy = int(yymmdd_numbers(np.array([day_num]))[0])
        old = same_century_day(date(1970, 1, 1) + timedelta(days=day_num))
        same = np.flatnonzero(self.birth[: self.base] == old)
        if self._seq_day != day_num:
            self._seq_day, self._seq_taken = day_num, set()
        taken = self._seq_taken
        if same.shape[0]:
            ids = self.people.frame["national_id"].gather(pl.Series(same)).to_list()
            taken |= {int(x[6:10]) for x in ids if int(x[:6]) == yy}
        out = np.zeros(male.shape[0], dtype=np.int64)
        for sex in (False, True):
            rows = np.flatnonzero(male == sex)
            lo = SEQ_PER_SEX if sex else 0
            free = np.setdiff1d(np.arange(lo, lo + SEQ_PER_SEX), np.fromiter(taken, dtype=np.int64))
            out[rows] = np.sort(rng.choice(free, size=rows.shape[0], replace=False))
        taken |= set(out.tolist())
        return out

    def _newborn_rows(
        self, rng: np.random.Generator, day_num: int, male: npt.NDArray[np.bool_], mothers: I64
    ) -> pl.DataFrame:
        k = male.shape[0]
        seq = self._sequences(rng, day_num, male)
        ids = assemble_ids(
            np.full(k, int(yymmdd_numbers(np.array([day_num]))[0])), seq, np.ones(k, dtype=np.bool_)
        )
        known = mothers >= 0
        fallback = rng.integers(0, self.base, size=k)
        parent = np.where(known, mothers, fallback)
        parent_rows = self.rows(parent.astype(np.int64))
        # The same weighted lists as the initial population: a uniform draw would make rare
        # names as common as "Thabo" among the newborns.
        group_index = {g: i for i, g in enumerate(names.POPULATION_GROUPS)}
        group = np.array(
            [group_index[g] for g in parent_rows["population_group"].to_list()], dtype=np.int64
        )
        first = choose_names(rng, ("female", "male"), group * 2 + male, "first_name")
        phone = np.empty((k, 12), dtype=np.uint8)
        phone[:, 0:3] = np.frombuffer(b"+27", dtype=np.uint8)
        prefixes = np.array(names.MOBILE_PREFIXES, dtype=np.int64)
        phone[:, 3:5] = digits(np.asarray(prefixes[rng.integers(0, prefixes.shape[0], size=k)]), 2)
        phone[:, 5:12] = digits(np.asarray(rng.integers(0, 10_000_000, size=k)), 7)
        frame = parent_rows.with_columns(
            ascii_matrix_to_series("person_id", random_uuids(rng, k)),
            ascii_matrix_to_series("national_id", ids),
            first,
            pl.Series("sex", np.where(male, "M", "F").tolist(), dtype=pl.String),
            pl.Series("birth_date", np.full(k, day_num, dtype=np.int32)).cast(pl.Date),
            ascii_matrix_to_series("phone", phone),  # a parent's number, in reality
        )
        return frame.select(PEOPLE_COLUMNS)

    # --- deaths ----------------------------------------------------------------------------------
    def background_deaths(
        self, rng: np.random.Generator, day_num: int, scale: float, exclude: set[int]
    ) -> I64:
        """People who die outside the hospital today (marks them dead); ``exclude``: inpatients
        and staff, whose deaths are decided elsewhere or not simulated."""
        if scale <= 0 or self.n == 0:
            return np.zeros(0, dtype=np.int64)
        top = float(max(MORTALITY_F.max(), MORTALITY_M.max())) / 1000.0 * scale / 365.25
        k = int(rng.poisson(self.n * top))
        cand = rng.integers(0, self.n, size=k)
        age = ((day_num - self.birth[cand]) / 365.25).astype(np.int64)
        rate = annual_mortality(age, self.male[cand]) * scale / 365.25
        keep = (rng.random(k) < rate / top) & (self.died[cand] == NEVER)
        dead = np.unique(cand[keep])
        dead = np.array([i for i in dead.tolist() if i not in exclude], dtype=np.int64)
        self.died[dead] = day_num
        return dead

    def age_on(self, idx: I64, day_num: int) -> I64:
        return np.asarray(((day_num - self.birth[idx]) / 365.25).astype(np.int64))


def same_century_day(day: date) -> int:
    """The day number a century earlier, which has the same YYMMDD (-1 for a 29 February
    without a leap year a century before)."""
    try:
        return (day.replace(year=day.year - 100) - date(1970, 1, 1)).days
    except ValueError:
        return -(10**7)

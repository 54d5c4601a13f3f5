"""Who is on duty: picks the staff member for a task from the day's roster.

A task at a given second goes to someone of the right ward and role on the shift covering that
second (night 19:00-07:00), falling back to the ward's member of that role on the other shift (on
call), then to the same role on that shift anywhere in the hospital, then to anyone of that role
on duty today. So every author, prescriber and performer is rostered
on the day of what they did.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.simulator.draws import DEPT_CODES
from hospital.simulator.timeline import DAY_S, HOUR_S, I64

NIGHT_START_S = 19 * HOUR_S
NIGHT_END_S = 7 * HOUR_S


def shift_of(seconds_abs: I64) -> npt.NDArray[np.str_]:
    s = np.asarray(seconds_abs) % DAY_S
    return np.where((s >= NIGHT_START_S) | (s < NIGHT_END_S), "night", "day")


class Rota:
    """The day's roster, indexed by (ward, role, shift)."""

    def __init__(self, roster: pl.DataFrame) -> None:
        self.pools: dict[tuple[int, str, str], npt.NDArray[np.object_]] = {}
        self.by_role: dict[tuple[str, str], npt.NDArray[np.object_]] = {}
        self.any_role: dict[str, npt.NDArray[np.object_]] = {}
        self.ward_role: dict[tuple[int, str], npt.NDArray[np.object_]] = {}
        index = {c: i for i, c in enumerate(DEPT_CODES)}
        for (dept, role, shift), part in roster.group_by(
            ["department_code", "role", "shift"], maintain_order=True
        ):
            ids = np.array(sorted(part["staff_id"].to_list()), dtype=object)
            self.pools[(index[str(dept)], str(role), str(shift))] = ids
        for (dept, role), part in roster.group_by(["department_code", "role"], maintain_order=True):
            self.ward_role[(index[str(dept)], str(role))] = np.array(
                sorted(part["staff_id"].to_list()), dtype=object
            )
        for (role, shift), part in roster.group_by(["role", "shift"], maintain_order=True):
            self.by_role[(str(role), str(shift))] = np.array(
                sorted(part["staff_id"].to_list()), dtype=object
            )
        for (role,), part in roster.group_by(["role"], maintain_order=True):
            self.any_role[str(role)] = np.array(sorted(part["staff_id"].to_list()), dtype=object)

    def pick(
        self, rng: np.random.Generator, dept: I64, role: str, at_abs: I64
    ) -> npt.NDArray[np.object_]:
        """One staff id per task: ward ``dept[i]``, ``role``, on shift at ``at_abs[i]``."""
        n = dept.shape[0]
        out = np.empty(n, dtype=object)
        if n == 0:
            return out
        shift = shift_of(at_abs)
        u: npt.NDArray[np.float64] = np.asarray(rng.random(n), dtype=np.float64)
        fallback = self.any_role.get(
            role, self.any_role.get("doctor", np.array([None], dtype=object))
        )
        for k in np.unique(dept).tolist():
            for sh in ("day", "night"):
                mask = (dept == k) & (shift == sh)
                if not mask.any():
                    continue
                # The ward's team on that shift, else the ward's on-call member of that role,
                # else the role on that shift anywhere.
                pool = self.pools.get((k, role, sh))
                if pool is None or pool.shape[0] == 0:
                    pool = self.ward_role.get((k, role))
                if pool is None or pool.shape[0] == 0:
                    pool = self.by_role.get((role, sh), fallback)
                pick = np.asarray(u[mask] * pool.shape[0], dtype=np.float64).astype(np.int64)
                out[mask] = pool[pick]
        return out

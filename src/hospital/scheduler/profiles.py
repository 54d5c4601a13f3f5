"""Named run profiles and the pacing plan of one ``hospital run``.

Precedence, lowest first: the ``RUN_PROFILE`` profile, then variables set in the environment /
``.env`` (``SECONDS_PER_SIM_DAY``, ``END_DATE``, ``STREAM_CADENCE_MINUTES``), then a profile
named with ``--profile`` (naming one on the command line means its pacing), then the other
options (``--speed``, ``--day-seconds``, ``--days``, ``--until``). ``NUM_PEOPLE``, when set,
always wins: it defines the simulated world. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from hospital.errors import ConfigError
from hospital.settings import Settings


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    seconds_per_day: float  # 0 = as fast as the pipelines keep up ("--speed max")
    days: int | None  # simulated days per run (None: until END_DATE)
    cadence_minutes: int | None = None  # None: STREAM_CADENCE_MINUTES
    num_people: int | None = None  # None: NUM_PEOPLE


# ~534 s/day: the containerised brief's 1,455 simulated days in 9 real days (9 * 86400 / 1455).
NINE_DAYS_1455_SECONDS = round(9 * 86_400 / 1_455, 1)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "demo",
            "5,000,000 people, 14 simulated days at max speed (what `make run` shows)",
            seconds_per_day=0.0,
            days=14,
            num_people=5_000_000,
        ),
        Profile(
            "walkthrough",
            "15 real minutes per simulated day, events every 3 simulated minutes, 9 days",
            seconds_per_day=900.0,
            days=9,
            cadence_minutes=3,
        ),
        Profile(
            "nine-days-1455",
            f"1,455 simulated days in 9 real days (~{NINE_DAYS_1455_SECONDS} s per day)",
            seconds_per_day=NINE_DAYS_1455_SECONDS,
            days=1_455,
        ),
        Profile(
            "backfill",
            "max speed up to END_DATE (default: one simulated year)",
            seconds_per_day=0.0,
            days=365,
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ConfigError(f"unknown run profile {name!r} (known: {known})") from None


@dataclass(frozen=True)
class RunPlan:
    """What one run does: simulated days ``[first, last]`` at ``seconds_per_day``."""

    profile: str
    first: date
    last: date
    seconds_per_day: float
    cadence_minutes: int
    num_people: int
    seed: int

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def max_speed(self) -> bool:
        return self.seconds_per_day <= 0

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "first_day": self.first.isoformat(),
            "last_day": self.last.isoformat(),
            "days": self.days,
            "seconds_per_day": self.seconds_per_day,
            "speed": "max" if self.max_speed else f"{self.seconds_per_day:g} s/day",
            "cadence_minutes": self.cadence_minutes,
            "num_people": self.num_people,
            "seed": self.seed,
        }


def parse_speed(speed: str | None, day_seconds: float | None) -> float | None:
    """Seconds per day from ``--speed`` (``max`` or a number of simulated days per real minute)
    and ``--day-seconds`` (which wins); None when neither was given."""
    if day_seconds is not None:
        if day_seconds < 0:
            raise ConfigError("--day-seconds must be zero or positive")
        return day_seconds
    if speed is None:
        return None
    if speed == "max":
        return 0.0
    try:
        per_minute = float(speed)
    except ValueError:
        raise ConfigError(f"--speed must be 'max' or days per real minute, not {speed!r}") from None
    if per_minute <= 0:
        raise ConfigError("--speed must be positive")
    return 60.0 / per_minute


def plan_run(
    settings: Settings,
    next_day: date,
    profile_name: str | None = None,
    seconds_per_day: float | None = None,
    days: int | None = None,
    until: date | None = None,
) -> RunPlan:
    """The plan of a run resuming at ``next_day`` (the first unfinished simulated day)."""
    profile = get_profile(profile_name or settings.run_profile)
    # Variables set explicitly override the default profile, not one named on the command line.
    explicit = settings.model_fields_set if profile_name is None else {"num_people"}
    spd = profile.seconds_per_day
    if "seconds_per_sim_day" in explicit:
        spd = settings.seconds_per_sim_day
    if seconds_per_day is not None:
        spd = seconds_per_day
    cadence = profile.cadence_minutes or settings.stream_cadence_minutes
    if "stream_cadence_minutes" in explicit:
        cadence = settings.stream_cadence_minutes
    people = profile.num_people or settings.num_people
    if "num_people" in explicit:
        people = settings.num_people
    # The last day: --days / --until from the command line, else END_DATE, else the profile.
    if days is not None and until is not None:
        raise ConfigError("give --days or --until, not both")
    if days is not None:
        if days < 1:
            raise ConfigError("--days must be at least 1")
        last = next_day + timedelta(days=days - 1)
    elif until is not None:
        last = until
    elif settings.end_date is not None and "end_date" in explicit:
        last = settings.end_date
    elif profile.days is not None:
        last = next_day + timedelta(days=profile.days - 1)
    else:
        raise ConfigError(f"profile {profile.name} needs END_DATE, --days or --until")
    return RunPlan(
        profile=profile.name,
        first=next_day,
        last=last,
        seconds_per_day=spd,
        cadence_minutes=cadence,
        num_people=people,
        seed=settings.seed,
    )

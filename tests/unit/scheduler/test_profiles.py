"""Run profiles and pacing: profile < environment < command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hospital.errors import ConfigError
from hospital.scheduler.jobs import Pacer
from hospital.scheduler.profiles import NINE_DAYS_1455_SECONDS, parse_speed, plan_run
from hospital.settings import load_settings

DAY = date(2020, 1, 15)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Defaults only: no variables of a developer's shell, no .env of the working directory."""
    for name in (
        "NUM_PEOPLE",
        "SECONDS_PER_SIM_DAY",
        "END_DATE",
        "RUN_PROFILE",
        "STREAM_CADENCE_MINUTES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_demo_is_the_default() -> None:
    plan = plan_run(load_settings(), DAY)
    assert plan.profile == "demo" and plan.max_speed
    assert plan.num_people == 5_000_000 and plan.days == 14
    assert plan.first == DAY and plan.last == date(2020, 1, 28)


def test_walkthrough_and_nine_days() -> None:
    walk = plan_run(load_settings(), DAY, "walkthrough")
    assert (walk.seconds_per_day, walk.cadence_minutes, walk.days) == (900.0, 3, 9)
    nine = plan_run(load_settings(), DAY, "nine-days-1455")
    assert nine.seconds_per_day == NINE_DAYS_1455_SECONDS and 530 < nine.seconds_per_day < 540
    assert nine.days == 1455


def test_environment_wins_over_the_default_profile_a_named_profile_over_both() -> None:
    s = load_settings(
        seconds_per_sim_day=10, num_people=20_000, end_date="2020-01-20", run_profile="walkthrough"
    )
    plan = plan_run(s, DAY)
    assert plan.profile == "walkthrough"
    assert plan.seconds_per_day == 10 and plan.num_people == 20_000
    assert plan.last == date(2020, 1, 20)
    # Naming the profile on the command line means its pacing (not SECONDS_PER_SIM_DAY) ...
    named = plan_run(s, DAY, "walkthrough")
    assert named.seconds_per_day == 900 and named.days == 9
    # ... but never another world: NUM_PEOPLE still wins.
    assert plan_run(s, DAY, "demo").num_people == 20_000
    plan = plan_run(s, DAY, "walkthrough", seconds_per_day=0.0, days=2)
    assert plan.max_speed and plan.last == date(2020, 1, 16)
    assert plan_run(s, DAY, until=date(2020, 2, 1)).last == date(2020, 2, 1)


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown run profile"):
        plan_run(load_settings(), DAY, "nope")
    with pytest.raises(ConfigError, match="--days or --until"):
        plan_run(load_settings(), DAY, days=2, until=DAY)
    with pytest.raises(ConfigError):
        parse_speed("fast", None)


def test_parse_speed() -> None:
    assert parse_speed("max", None) == 0.0
    assert parse_speed("4", None) == 15.0  # 4 simulated days per real minute
    assert parse_speed("max", 900) == 900
    assert parse_speed(None, None) is None


def test_pacer_spreads_windows_over_the_day_on_a_fake_clock() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(100.0, lambda: False, sleep=sleep, now=lambda: now[0])
    pacer.begin_day()
    assert pacer.wait_fraction(0.25)
    assert now[0] == pytest.approx(25.0)
    assert pacer.wait_fraction(1.0)
    assert now[0] == pytest.approx(100.0)
    assert max(slept) <= 0.5  # short sleeps, so a stop request is seen quickly
    stopped = Pacer(100.0, lambda: True, sleep=sleep, now=lambda: now[0])
    assert not stopped.wait_fraction(0.5)
    assert Pacer(0.0, lambda: False).wait_fraction(1.0)

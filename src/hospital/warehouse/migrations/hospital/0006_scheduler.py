"""Scheduler: the main job's per-day job state and a time series of pipeline metrics.

``pipeline_metrics`` is the one place every path reports its figures (rows applied, lag,
latency, quarantined, restarts ...) as (ts, path, metric, value); the dashboard charts it.

``scheduler_job_days`` records, per simulated world (the simulator's config key), which job
finished which simulated day: ``hospital run`` resumes at the first unrecorded (job, day) and never
records one twice (primary key). ``scheduler_progress`` holds a job's position inside the day it
is working on (the stream producer's last published window), ``scheduler_runs`` one row per run
with its final report.

Revision ID: hospital_0006
Revises: hospital_0005
"""

from alembic import op

from hospital.warehouse.roles import if_role_exists

revision = "hospital_0006"
down_revision = "hospital_0005"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE pipeline_metrics (
    -- clock_timestamp(), not now(): a report inserted at the end of a long transaction (a 5M-row
    -- file) must carry that moment, or rates divide its rows by the previous report's duration.
    ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
    path    text NOT NULL,
    metric  text NOT NULL,
    value   double precision NOT NULL,
    sim_day date
);
CREATE INDEX pipeline_metrics_path_metric_ts_idx ON pipeline_metrics (path, metric, ts);

CREATE TABLE scheduler_job_days (
    world         text NOT NULL,
    job           text NOT NULL,
    sim_day       date NOT NULL,
    completed_at  timestamptz NOT NULL DEFAULT now(),
    seconds       double precision NOT NULL DEFAULT 0,
    detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (world, job, sim_day)
);
CREATE TABLE scheduler_progress (
    world       text NOT NULL,
    job         text NOT NULL,
    sim_day     date NOT NULL,
    position    integer NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (world, job)
);
CREATE TABLE scheduler_runs (
    run_id       bigserial PRIMARY KEY,
    world        text NOT NULL,
    profile      text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running',
    report       jsonb
);
"""
# Only where the role exists: an external server need not have our `analyst`.
GRANTS = if_role_exists(
    "analyst",
    "GRANT SELECT ON pipeline_metrics, scheduler_job_days, scheduler_progress, scheduler_runs"
    " TO analyst;",
)


def upgrade() -> None:
    op.execute(DDL)
    op.execute(GRANTS)


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS scheduler_runs, scheduler_progress, scheduler_job_days, "
        "pipeline_metrics"
    )

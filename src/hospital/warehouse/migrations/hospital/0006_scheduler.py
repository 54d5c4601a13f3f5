"""Scheduler: the main job's per-day job state and a time series of pipeline metrics.

``pipeline_metrics`` is the one place every path reports its figures (rows applied, lag,
latency, quarantined, restarts ...) as (ts, path, metric, value); the dashboard charts it.

Revision ID: hospital_0006
Revises: hospital_0005
"""

from alembic import op

revision = "hospital_0006"
down_revision = "hospital_0005"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE pipeline_metrics (
    ts      timestamptz NOT NULL DEFAULT now(),
    path    text NOT NULL,
    metric  text NOT NULL,
    value   double precision NOT NULL,
    sim_day date
);
CREATE INDEX pipeline_metrics_path_metric_ts_idx ON pipeline_metrics (path, metric, ts);
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS pipeline_metrics")

-- The scheduler: the last due time handled per job (so a restart catches up once), one lock row per
-- running job (no overlapping runs: the holder is a process that can be recognised as dead), and runs.
CREATE TABLE scheduler_state (
  job TEXT PRIMARY KEY,
  last_due TEXT,
  last_status TEXT,
  last_run TEXT
);
CREATE TABLE scheduler_locks (
  job TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  node TEXT NOT NULL,
  pid INTEGER NOT NULL,
  proc_start TEXT NOT NULL,
  since TEXT NOT NULL
);
CREATE TABLE scheduler_runs (
  id TEXT PRIMARY KEY,
  job TEXT NOT NULL,
  due_at TEXT NOT NULL,
  catch_up INTEGER NOT NULL,
  status TEXT NOT NULL,
  detail TEXT,
  started_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE INDEX scheduler_runs_job ON scheduler_runs (job, started_at)

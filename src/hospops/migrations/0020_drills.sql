-- Restore drills (GB/T 22239 level 3: records of restore tests): what was restored, to when, how long it took
-- to a usable database (RTO), how much data was lost against the target (RPO), and which checks passed.
CREATE TABLE drills (
  id TEXT PRIMARY KEY,
  started_at TEXT NOT NULL,
  ended_at TEXT,
  status TEXT NOT NULL,
  actor TEXT NOT NULL,
  run_id TEXT,
  backup_label TEXT,
  backup_type TEXT,
  backup_stop TEXT,
  target_type TEXT,
  target TEXT,
  scratch_host TEXT,
  rto_seconds REAL,
  rpo_seconds REAL,
  checks TEXT NOT NULL DEFAULT '{}',
  markers TEXT NOT NULL DEFAULT '{}',
  error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX drills_started ON drills (started_at);

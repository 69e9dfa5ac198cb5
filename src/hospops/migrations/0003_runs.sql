-- Playbook runs through ansible-runner, judged by status, rc and per-host stats.
CREATE TABLE runs (
  id TEXT PRIMARY KEY,
  change_id TEXT REFERENCES changes (id),
  playbook TEXT NOT NULL,
  inventory TEXT NOT NULL,
  actor TEXT NOT NULL,
  check_mode INTEGER NOT NULL,
  limit_pattern TEXT,
  extravar_names TEXT NOT NULL,
  status TEXT NOT NULL,
  rc INTEGER,
  stats TEXT,
  failed_hosts TEXT,
  unreachable_hosts TEXT,
  gate TEXT,
  artifacts_dir TEXT NOT NULL,
  started_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE INDEX runs_change ON runs (change_id);

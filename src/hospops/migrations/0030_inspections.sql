-- Inspections (contract 5.1, 5.2, 7.4.2 (4)): one row per inspection run, the JSON result per host,
-- the findings, and numeric metrics kept as history for trends and predictions.
CREATE TABLE inspection_runs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  run_id TEXT,
  actor TEXT NOT NULL,
  status TEXT NOT NULL,
  hosts INTEGER NOT NULL DEFAULT 0,
  findings INTEGER NOT NULL DEFAULT 0,
  unreachable TEXT,
  started_at TEXT NOT NULL,
  ended_at TEXT
);
CREATE INDEX inspection_runs_started ON inspection_runs (started_at);
CREATE TABLE inspection_results (
  inspection_id TEXT NOT NULL REFERENCES inspection_runs (id),
  host TEXT NOT NULL,
  service TEXT,
  status TEXT NOT NULL,
  at TEXT NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (inspection_id, host)
);
CREATE TABLE inspection_findings (
  inspection_id TEXT NOT NULL REFERENCES inspection_runs (id),
  seq INTEGER NOT NULL,
  host TEXT NOT NULL,
  service TEXT,
  code TEXT NOT NULL,
  severity TEXT NOT NULL,
  subject TEXT NOT NULL,
  message TEXT NOT NULL,
  clause TEXT NOT NULL,
  recommendation TEXT NOT NULL,
  value REAL,
  threshold REAL,
  at TEXT NOT NULL,
  PRIMARY KEY (inspection_id, seq)
);
CREATE INDEX inspection_findings_code ON inspection_findings (code, host);
CREATE TABLE inspection_metrics (
  inspection_id TEXT NOT NULL REFERENCES inspection_runs (id),
  host TEXT NOT NULL,
  metric TEXT NOT NULL,
  subject TEXT NOT NULL,
  value REAL NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX inspection_metrics_series ON inspection_metrics (host, metric, subject, at);
-- Maintenance runs (db_maintenance, os_maintenance): what was done and what it freed, per host.
CREATE TABLE maintenance_results (
  run_id TEXT NOT NULL,
  host TEXT NOT NULL,
  kind TEXT NOT NULL,
  check_mode INTEGER NOT NULL,
  changed INTEGER NOT NULL,
  freed_bytes INTEGER NOT NULL,
  at TEXT NOT NULL,
  result TEXT NOT NULL,
  PRIMARY KEY (run_id, host, kind)
);
CREATE INDEX maintenance_results_at ON maintenance_results (at)

-- Incidents (contract 7.7): level, fingerprint, timeline, SLA clocks and repeat counts.
-- Times are ISO-8601 UTC text. Ids are readable (INC-YYYYMMDD-NNN), made by hospops.incidents.
CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  service TEXT NOT NULL,
  symptom TEXT NOT NULL,
  level TEXT NOT NULL,
  original_level TEXT NOT NULL,
  rule TEXT,
  title TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  source TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  status TEXT NOT NULL,
  opened_at TEXT NOT NULL,
  acknowledged_at TEXT,
  acknowledged_by TEXT,
  responded_at TEXT,
  resolved_at TEXT,
  closed_at TEXT,
  off_hours INTEGER NOT NULL DEFAULT 0,
  response_due TEXT NOT NULL,
  repair_due TEXT,
  clinic_due TEXT,
  clinic_due_hard INTEGER NOT NULL DEFAULT 0,
  work_list TEXT,
  list_due TEXT,
  repeat_no INTEGER NOT NULL DEFAULT 1,
  escalated INTEGER NOT NULL DEFAULT 0,
  waiting_since TEXT,
  waited_seconds INTEGER NOT NULL DEFAULT 0,
  notify_step INTEGER NOT NULL DEFAULT 0,
  last_seen_at TEXT NOT NULL,
  seen_count INTEGER NOT NULL DEFAULT 1,
  detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incidents_fingerprint ON incidents (fingerprint, opened_at);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_opened ON incidents (opened_at);

-- The timeline: opened, acknowledged, responded, waiting/resumed, escalated, resolved, closed, seen.
CREATE TABLE incident_events (
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  seq INTEGER NOT NULL,
  at TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (incident_id, seq)
);

-- Links to change requests, runs and tickets: ids only (those tables belong to other features).
CREATE TABLE incident_links (
  incident_id TEXT NOT NULL REFERENCES incidents (id),
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,
  at TEXT NOT NULL,
  PRIMARY KEY (incident_id, kind, ref)
);

-- Probe memory per fingerprint, so a restart of `hospops watch` loses nothing.
CREATE TABLE probe_state (
  fingerprint TEXT PRIMARY KEY,
  bad_streak INTEGER NOT NULL DEFAULT 0,
  good_streak INTEGER NOT NULL DEFAULT 0,
  last_at TEXT NOT NULL,
  last_ok INTEGER NOT NULL,
  last_detail TEXT NOT NULL DEFAULT '{}'
);

-- Consultation tickets (7.4.2 (1)): reaction within 4 h, proposed solution within 48 h.
CREATE TABLE tickets (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  body TEXT NOT NULL DEFAULT '',
  asked_by TEXT NOT NULL,
  channel TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  opened_at TEXT NOT NULL,
  reacted_at TEXT,
  reacted_by TEXT,
  proposed_at TEXT,
  proposed_by TEXT,
  proposal TEXT NOT NULL DEFAULT '',
  closed_at TEXT,
  react_due TEXT NOT NULL,
  propose_due TEXT NOT NULL,
  incident_id TEXT
);
CREATE INDEX tickets_opened ON tickets (opened_at);

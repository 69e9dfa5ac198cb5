-- The audit chain: append-only, each record carries the hash of the one before it.
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  kind TEXT NOT NULL,
  subject TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE
);
-- After pruning (only records older than the retention), the chain restarts from this anchor.
CREATE TABLE audit_anchor (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL,
  pruned_at TEXT NOT NULL
);

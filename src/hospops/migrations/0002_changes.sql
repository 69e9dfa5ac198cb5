-- Change requests and the signed decisions on them (contract 7.7.2 A, 5.5).
-- request holds the canonical JSON that approvers sign (via its digest), the other columns are
-- copies for querying. state: pending | approved | denied | break-glass | pre-approved.
CREATE TABLE changes (
  id TEXT PRIMARY KEY,
  action TEXT NOT NULL,
  class TEXT NOT NULL,
  state TEXT NOT NULL,
  targets TEXT NOT NULL,
  requester TEXT NOT NULL,
  incident TEXT,
  window_start TEXT NOT NULL,
  window_end TEXT NOT NULL,
  request TEXT NOT NULL,
  digest TEXT NOT NULL,
  nonce TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  decided_at TEXT,
  approval_due TEXT
);
CREATE INDEX changes_state ON changes (state);
CREATE TABLE approvals (
  id TEXT PRIMARY KEY,
  change_id TEXT NOT NULL REFERENCES changes (id),
  approver TEXT NOT NULL,
  organisation TEXT NOT NULL,
  decision TEXT NOT NULL,
  payload TEXT NOT NULL,
  signature TEXT NOT NULL,
  signed_at TEXT NOT NULL,
  UNIQUE (change_id, approver)
);

-- One changing run per host at a time. The holder is a process (node, pid, its start time), so a
-- lock left by a process that died can be recognised and released.
CREATE TABLE host_locks (
  host TEXT PRIMARY KEY,
  run_id TEXT NOT NULL,
  holder TEXT NOT NULL,
  node TEXT NOT NULL,
  pid INTEGER NOT NULL,
  proc_start TEXT NOT NULL,
  since TEXT NOT NULL
);

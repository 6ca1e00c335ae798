-- atlas schema 7: archived tasks (DESIGN §14; pg-archive.ts). One row per task holding its
-- archive, the same checksummed tar.gz the filesystem store writes (task.json, its previous
-- checkpoint, env.json, task.log, artifacts/), written in the transaction that deletes the
-- live rows, so a task is always exactly one of live or archived.
CREATE TABLE archived_tasks (
  id           text PRIMARY KEY,
  workspace    text NOT NULL,
  sort_key     text NOT NULL,
  -- the task's summary with archived_at and archive_bytes, for `list --archived`
  summary      text NOT NULL,
  archived_at  timestamptz NOT NULL DEFAULT now(),
  data         bytea NOT NULL
);
-- Already compressed: stored out of line as is.
ALTER TABLE archived_tasks ALTER COLUMN data SET STORAGE EXTERNAL;

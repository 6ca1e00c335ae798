-- atlas schema 1: tasks, their logs and artifacts, workspaces, daemons.
-- Applied by src/store/pg/migrate.ts inside one transaction, with search_path set to the
-- atlas schema (store_schema: in config.yaml; `atlas` by default).

CREATE SEQUENCE change_seq;

CREATE TABLE daemons (
  id            text PRIMARY KEY,
  host          text NOT NULL,
  pid           integer NOT NULL,
  home          text NOT NULL,
  version       text NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  -- workspaces this daemon can run (path workspaces it has, worktrees it made)
  workspaces    text[] NOT NULL DEFAULT '{}',
  stopped_at    timestamptz
);

CREATE TABLE workspaces (
  name        text PRIMARY KEY,
  record      text NOT NULL,
  created_by  text
);

CREATE TABLE tasks (
  id           text PRIMARY KEY,
  workspace    text NOT NULL,
  sort_key     text NOT NULL,
  status       text NOT NULL,
  template     text NOT NULL,
  priority     integer NOT NULL,
  created_at   text NOT NULL,
  revision     integer NOT NULL,
  -- the task record exactly as task.json would hold it, and the previous checkpoint
  data         text NOT NULL,
  prev         text,
  summary      text NOT NULL,
  -- the environment captured at `atlas start` (secret: never in the record)
  environment  text,
  -- the lease: owner daemon, an epoch that grows at every claim, and its expiry (database clock)
  owner        text,
  lease_epoch  bigint NOT NULL DEFAULT 0,
  lease_until  timestamptz,
  -- the last daemon that ran it (its process trees may still be on that machine)
  last_owner   text,
  change_seq   bigint NOT NULL DEFAULT nextval('change_seq')
);
CREATE INDEX tasks_workspace ON tasks (workspace, sort_key);
CREATE INDEX tasks_sort ON tasks (sort_key);
CREATE INDEX tasks_runnable ON tasks (priority DESC, created_at, sort_key) WHERE status IN ('pending', 'running');
CREATE INDEX tasks_owner ON tasks (owner) WHERE owner IS NOT NULL;
CREATE INDEX tasks_change ON tasks (change_seq);

CREATE TABLE task_logs (
  seq      bigserial PRIMARY KEY,
  task_id  text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  record   text NOT NULL
);
CREATE INDEX task_logs_task ON task_logs (task_id, seq);

CREATE TABLE artifacts (
  task_id      text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  name         text NOT NULL,
  base         text,
  ext          text,
  version      integer,
  data         bytea NOT NULL,
  modified_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, name)
);

CREATE TABLE quarantine (
  id              text PRIMARY KEY,
  workspace       text NOT NULL,
  data            text,
  prev            text,
  quarantined_at  timestamptz NOT NULL DEFAULT now()
);

-- atlas schema 6: workspace memory (DESIGN §14; src/store/memory.ts has the contract).
-- `key`: an idempotency key (an ai step's entries, read again after a crash, are added once).
CREATE TABLE memory (
  id          bigserial PRIMARY KEY,
  workspace   text NOT NULL,
  kind        text NOT NULL,
  text        text NOT NULL,
  source      text NOT NULL,
  key         text UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX memory_workspace ON memory (workspace, id);

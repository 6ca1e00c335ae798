-- atlas schema 4: schedules and their fires (DESIGN §13; src/store/schedules.ts has the
-- exactly-once protocol). A pass claims slots by moving a schedule's cursor from the value it
-- read, in the transaction that inserts the fires, so of several daemons passing at once only
-- one records a slot; a fire's slot is unique per schedule.

CREATE TABLE schedules (
  name    text PRIMARY KEY,
  -- the schedule record as schedules/<name>.json would hold it (cursor included)
  record  text NOT NULL,
  cursor  text NOT NULL
);

CREATE TABLE schedule_fires (
  seq          bigserial PRIMARY KEY,
  schedule     text NOT NULL REFERENCES schedules (name) ON DELETE CASCADE,
  slot         text NOT NULL,
  kind         text NOT NULL,
  state        text NOT NULL,
  task_id      text,
  recorded_at  text NOT NULL,
  error        text,
  skipped      text
);
CREATE UNIQUE INDEX schedule_fires_slot ON schedule_fires (schedule, slot) WHERE kind <> 'skipped';
CREATE INDEX schedule_fires_open ON schedule_fires (state) WHERE state = 'claimed';

-- atlas schema 2: events (DESIGN §10) as rows, written in the transaction of the checkpoint
-- that made them, and read by every daemon of the database.
--
-- A writer inserts its events without a seq (its transaction may commit after one that
-- began later). sequence_events() then numbers every committed, unnumbered event under the
-- event_clock row lock, in one transaction: numbering is serialised, so a reader that sees
-- seq N committed has every seq below N too, and `seq > since` never skips an event.

CREATE TABLE events (
  n          bigserial PRIMARY KEY,
  seq        bigint UNIQUE,
  id         text NOT NULL UNIQUE,
  type       text NOT NULL,
  at         timestamptz,
  task_id    text NOT NULL,
  workspace  text NOT NULL,
  data       text NOT NULL,
  -- the daemon that wrote it (its webhooks deliver it: one delivery per event, not one per daemon)
  daemon     text DEFAULT current_setting('atlas.daemon', true)
);
CREATE INDEX events_unnumbered ON events (n) WHERE seq IS NULL;

-- last_seq / last_at: the newest numbered event (`at` only grows); genesis: when events began.
CREATE TABLE event_clock (
  one       boolean PRIMARY KEY DEFAULT true CHECK (one),
  last_seq  bigint NOT NULL DEFAULT 0,
  last_at   timestamptz NOT NULL DEFAULT now(),
  genesis   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO event_clock DEFAULT VALUES;

-- How far each task's facts (transitions, step results) have events: a checkpoint inserts
-- only the events past these, in its own statement, and moves them.
ALTER TABLE tasks ADD COLUMN ev_t integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN ev_r integer NOT NULL DEFAULT 0;

-- Numbers the committed events that have no seq yet; returns the newest seq.
CREATE FUNCTION sequence_events() RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  base bigint;
  stamp timestamptz;
  cnt bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM events WHERE seq IS NULL) THEN
    RETURN (SELECT last_seq FROM event_clock);
  END IF;
  SELECT last_seq, greatest(last_at, clock_timestamp()) INTO base, stamp FROM event_clock FOR UPDATE;
  WITH todo AS (
    SELECT n, row_number() OVER (ORDER BY n) AS k FROM events WHERE seq IS NULL ORDER BY n LIMIT 50000
  )
  UPDATE events e SET seq = base + todo.k, at = stamp FROM todo WHERE e.n = todo.n;
  GET DIAGNOSTICS cnt = ROW_COUNT;
  UPDATE event_clock SET last_seq = base + cnt, last_at = stamp;
  RETURN base + cnt;
END
$$;

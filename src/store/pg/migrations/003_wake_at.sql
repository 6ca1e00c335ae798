-- atlas schema 3: a task whose durable wait let go of it (no daemon holds its lease while it
-- waits) is not claimed before wake_at, the wait's deadline.
ALTER TABLE tasks ADD COLUMN wake_at timestamptz;

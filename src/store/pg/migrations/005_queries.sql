-- atlas schema 5: `atlas list` queries in SQL (DESIGN §13; pg-query.ts). Each task row keeps
-- its labels (jsonb, for `-l key=value`) and what `--text` searches (written by atlas in
-- lower case, as the filesystem index computes it: task-query.ts searchText). Rows written
-- before this migration have search NULL until the first daemon that starts fills them in.
-- Ids and times compare byte-wise (COLLATE "C"), as the filesystem index compares strings.
ALTER TABLE tasks ADD COLUMN labels jsonb;
ALTER TABLE tasks ADD COLUMN search text;
UPDATE tasks SET labels = (summary::jsonb)->'labels' WHERE summary LIKE '{%';
CREATE INDEX tasks_sort_c ON tasks (sort_key COLLATE "C");
CREATE INDEX tasks_created_c ON tasks (created_at COLLATE "C");
CREATE INDEX tasks_status ON tasks (status, sort_key COLLATE "C");
CREATE INDEX tasks_labels ON tasks USING gin (labels jsonb_path_ops);
CREATE INDEX tasks_unsearchable ON tasks (id) WHERE search IS NULL;

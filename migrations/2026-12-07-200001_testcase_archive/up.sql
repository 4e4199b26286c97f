-- A test case that has run is archived instead of deleted: hidden from lists and runs, kept for
-- the history of its executions (which refer to its versions).
ALTER TABLE testcases ADD COLUMN archived_at TIMESTAMPTZ;

ALTER TABLE testcases DROP COLUMN archived_at;

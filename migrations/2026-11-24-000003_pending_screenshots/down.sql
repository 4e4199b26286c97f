ALTER TABLE execution_steps DROP COLUMN screenshot_pending;

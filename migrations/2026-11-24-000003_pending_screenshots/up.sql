-- A step can be stored before its screenshot: the host reports the step at once and sends the
-- stored-quality JPEG when it is encoded. An execution only ends once none is pending.
ALTER TABLE execution_steps ADD COLUMN screenshot_pending BOOLEAN NOT NULL DEFAULT false;

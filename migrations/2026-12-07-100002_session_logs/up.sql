-- A session's own output (its containers' stdout and stderr). A line is identified by its
-- container (a restart makes a new one) and number, so a batch resent by a worker is stored once;
-- `seq` is the display order (and the SSE event id). The api-server keeps the newest lines of a
-- session only (a bound per session); they go with the session.
CREATE TABLE session_logs (
    session_id    UUID NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    container_id  TEXT NOT NULL,
    line_no       BIGINT NOT NULL,
    seq           BIGSERIAL NOT NULL,
    line          TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, container_id, line_no)
);
CREATE INDEX session_logs_session_seq ON session_logs (session_id, seq);

-- What identifies a file the collector has read part of: the offset in ingest_state only applies to the
-- same file (device and inode) whose bytes before the offset still hash the same (head and tail of them).
ALTER TABLE ingest_state ADD COLUMN device UBIGINT;
ALTER TABLE ingest_state ADD COLUMN inode UBIGINT;
ALTER TABLE ingest_state ADD COLUMN head_hash VARCHAR;

-- Review page sign-ins: the signed cookie names a row here, so signing out, a new password or a new role
-- (`flywheel review add-user`) ends a session everywhere at once.
CREATE TABLE review_sessions (
    id          VARCHAR PRIMARY KEY,        -- sha256 of the random token the cookie carries
    username    VARCHAR NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX review_sessions_user ON review_sessions(username);

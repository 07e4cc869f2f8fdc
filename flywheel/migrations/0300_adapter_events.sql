-- Every status change of an adapter (who was production before whom), so rollback has a history to read.
CREATE TABLE adapter_events (
    id          VARCHAR PRIMARY KEY,
    version     VARCHAR NOT NULL,
    from_status VARCHAR,
    to_status   VARCHAR NOT NULL,
    reason      VARCHAR,
    created_at  TIMESTAMPTZ DEFAULT current_timestamp
);
CREATE INDEX adapter_events_version ON adapter_events(version);

-- Raw data written by the collector (the only writer of raw data).
CREATE TABLE interactions (
    id               VARCHAR PRIMARY KEY,   -- response id, else a content hash
    ts               TIMESTAMPTZ,
    workload_id      VARCHAR,
    client_id        VARCHAR,
    model            VARCHAR,
    adapter          VARCHAR,
    messages         JSON,                  -- the prompt: list of {role, content}
    response         VARCHAR,               -- the assistant answer text
    request          JSON,                  -- original request (OpenAI shape) when there was one
    latency_ms       DOUBLE,
    prompt_tokens    INTEGER,
    completion_tokens INTEGER,
    source           VARCHAR,
    ingested_at      TIMESTAMPTZ DEFAULT current_timestamp,
    raw_purged_at    TIMESTAMPTZ            -- set when raw text was purged after retention
);

CREATE TABLE feedback (
    id             VARCHAR PRIMARY KEY,     -- content hash: ingesting twice changes nothing
    interaction_id VARCHAR NOT NULL,        -- may point at an interaction not yet ingested
    ts             TIMESTAMPTZ,
    kind           VARCHAR NOT NULL,        -- thumb | rating | correction | comment | regenerate
    value          DOUBLE,                  -- thumb: +1/-1, rating: 1..5
    text           VARCHAR,
    user_id        VARCHAR,
    source         VARCHAR,
    ingested_at    TIMESTAMPTZ DEFAULT current_timestamp
);
CREATE INDEX feedback_interaction ON feedback(interaction_id);

CREATE TABLE quarantine (
    id          VARCHAR PRIMARY KEY,        -- hash of stage + source + line + raw: re-runs add nothing
    stage       VARCHAR NOT NULL,           -- collect | scrub | dedup | hap | curate | ...
    source      VARCHAR,
    line        BIGINT,
    reason      VARCHAR NOT NULL,
    raw         VARCHAR,
    created_at  TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE ingest_state (
    source      VARCHAR PRIMARY KEY,        -- absolute file path
    "offset"    BIGINT NOT NULL,            -- bytes consumed (complete lines only)
    line        BIGINT NOT NULL,            -- lines consumed
    size        BIGINT,
    mtime       DOUBLE,
    done        BOOLEAN DEFAULT false,      -- parquet / gzip files are read whole
    updated_at  TIMESTAMPTZ DEFAULT current_timestamp
);

-- Curation.
CREATE TABLE bad_cases (
    interaction_id VARCHAR PRIMARY KEY,
    priority       DOUBLE NOT NULL,
    signals        JSON,                    -- {signal: weight} that fired
    cluster_id     VARCHAR,
    suggested_answer VARCHAR,
    mined_at       TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE review_queue (
    interaction_id VARCHAR PRIMARY KEY,
    cluster_id     VARCHAR,
    priority       DOUBLE,
    status         VARCHAR NOT NULL DEFAULT 'new',   -- new | accepted | edited | rejected
    suggested_answer VARCHAR,
    edited_answer  VARCHAR,
    reason         VARCHAR,
    reviewer       VARCHAR,
    decided_at     TIMESTAMPTZ,
    revision       INTEGER NOT NULL DEFAULT 0,      -- optimistic concurrency between annotators
    created_at     TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE review_users (
    username      VARCHAR PRIMARY KEY,
    role          VARCHAR NOT NULL,         -- annotator | lead
    password_hash VARCHAR NOT NULL,
    created_at    TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE examples (
    id                  VARCHAR PRIMARY KEY, -- content hash
    kind                VARCHAR NOT NULL,    -- sft | dpo
    payload             JSON NOT NULL,
    source_interactions JSON,
    dataset_version     VARCHAR,
    split               VARCHAR,             -- train | eval
    created_at          TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE dataset_versions (
    version      VARCHAR PRIMARY KEY,       -- v1, v2, ...
    uri          VARCHAR NOT NULL,
    window_key   VARCHAR,                   -- hash of the inputs: same window => same version
    n_sft        INTEGER,
    n_dpo        INTEGER,
    n_new        INTEGER,
    content_hash VARCHAR,
    stats        JSON,
    created_at   TIMESTAMPTZ DEFAULT current_timestamp
);

-- Training, evaluation, deployment.
CREATE TABLE training_runs (
    run_id          VARCHAR PRIMARY KEY,
    dataset_version VARCHAR,
    adapter_version VARCHAR,
    status          VARCHAR NOT NULL,       -- running | succeeded | failed
    config          JSON,
    error           VARCHAR,
    started_at      TIMESTAMPTZ DEFAULT current_timestamp,
    finished_at     TIMESTAMPTZ
);

CREATE TABLE adapters (
    version         VARCHAR PRIMARY KEY,    -- v1, v2, ...
    path            VARCHAR NOT NULL,
    status          VARCHAR NOT NULL,       -- candidate | production | rejected | retired
    base_model      VARCHAR,
    dataset_version VARCHAR,
    metadata        JSON,
    created_at      TIMESTAMPTZ DEFAULT current_timestamp,
    updated_at      TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE evaluations (
    id              VARCHAR PRIMARY KEY,
    adapter_version VARCHAR NOT NULL,
    against         VARCHAR,
    metrics         JSON,
    decision        VARCHAR,                -- promote | reject
    reasons         JSON,
    created_at      TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE deployments (
    id              VARCHAR PRIMARY KEY,
    adapter_version VARCHAR,
    target          VARCHAR,                -- local | vllm
    action          VARCHAR,                -- promote | rollback
    status          VARCHAR,                -- succeeded | failed
    detail          JSON,
    created_at      TIMESTAMPTZ DEFAULT current_timestamp
);

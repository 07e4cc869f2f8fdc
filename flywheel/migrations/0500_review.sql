-- Annotator review page (serving/review).

-- What annotators see: each review item's conversation as scrubbed, made once and reused, so the
-- PII scrubber does not run on every page view. source_key hashes the raw fields and the scrub
-- settings it was made from; a change of either makes the page scrub again (while raw text exists).
CREATE TABLE review_scrubbed (
    interaction_id   VARCHAR PRIMARY KEY,
    source_key       VARCHAR NOT NULL,
    messages         JSON,                  -- [{role, content}] scrubbed
    response         VARCHAR,
    suggested_answer VARCHAR,
    feedback         JSON,                  -- [{kind, value, text}] with text scrubbed
    withheld         VARCHAR,               -- why the scrubber dropped the record (then nothing is shown)
    scrubbed_at      TIMESTAMPTZ DEFAULT current_timestamp
);

-- Every decision ever taken, in order: review_queue keeps only the latest one per item, this keeps who
-- decided what and when (the audit page), including decisions a later one replaced.
CREATE TABLE review_decisions (
    id             VARCHAR PRIMARY KEY,     -- content hash of item, revision and reviewer
    interaction_id VARCHAR NOT NULL,
    cluster_id     VARCHAR,
    reviewer       VARCHAR NOT NULL,
    status         VARCHAR NOT NULL,        -- accepted | edited | rejected
    edited_answer  VARCHAR,
    reason         VARCHAR,
    revision       INTEGER NOT NULL,        -- review_queue.revision this decision produced
    via_cluster    BOOLEAN NOT NULL DEFAULT false,
    decided_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX review_decisions_reviewer ON review_decisions(reviewer);

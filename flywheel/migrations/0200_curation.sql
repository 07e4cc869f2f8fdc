-- Curation: imported seed / replay data, and the cache of LLM-judge scores used by bad-case mining.
CREATE TABLE imported_examples (
    id          VARCHAR PRIMARY KEY,        -- content hash of kind + payload: importing twice adds nothing
    kind        VARCHAR NOT NULL,           -- sft | dpo
    use_as      VARCHAR NOT NULL,           -- seed (enters the next version as new) | replay (only replayed)
    payload     JSON NOT NULL,              -- the SFT / DPO record (messages | prompt, chosen, rejected)
    source      VARCHAR,
    imported_at TIMESTAMPTZ DEFAULT current_timestamp
);

CREATE TABLE judge_scores (
    key        VARCHAR PRIMARY KEY,         -- hash of judge model + prompt + answer
    model      VARCHAR,
    score      DOUBLE,                      -- 0 (bad answer) .. 1 (good answer)
    created_at TIMESTAMPTZ DEFAULT current_timestamp
);

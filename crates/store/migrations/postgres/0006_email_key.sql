-- E-mail uniqueness by a key folded in Rust (`voltplan_core::account::email_key`), identical on
-- both backends (SQLite's lower() folds ASCII only, PostgreSQL's Unicode). Rows written before
-- this migration get their key when the store opens (`refold_email_keys`), before it serves.
ALTER TABLE users ADD COLUMN email_key TEXT;
DROP INDEX users_email_unique;
CREATE UNIQUE INDEX users_email_key_unique ON users (org_id, email_key) WHERE deleted_at IS NULL;

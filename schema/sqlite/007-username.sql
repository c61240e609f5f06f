-- 007-username.sql - schema 7: the column "user" is called username.
--
-- USER is a reserved word in standard SQL: on PostgreSQL `SELECT user`
-- answers the role's name, not the column, with no error.  The VMDB's SQL
-- is written once for both engines, so the column takes a name that means
-- the same everywhere.  SQLite's RENAME COLUMN rewrites the triggers and
-- views that read it (sessions_prepare_end) in the same step.

ALTER TABLE uservms RENAME COLUMN user TO username;
ALTER TABLE host_domains RENAME COLUMN user TO username;
ALTER TABLE requests RENAME COLUMN user TO username;

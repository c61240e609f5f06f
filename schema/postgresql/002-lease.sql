-- 002-lease.sql - a claim's owner is a token any machine can judge, and a
-- lease renewed while the owner runs (as schema/sqlite/008-lease.sql).

ALTER TABLE masters ADD COLUMN owner text COLLATE "C";
ALTER TABLE masters ADD COLUMN lease bigint;
ALTER TABLE uservms ADD COLUMN owner text COLLATE "C";
ALTER TABLE uservms ADD COLUMN lease bigint;
ALTER TABLE sessions ADD COLUMN owner text COLLATE "C";
ALTER TABLE sessions ADD COLUMN lease bigint;

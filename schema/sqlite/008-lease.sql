-- 008-lease.sql - schema 8: a claim's owner is a token any machine can judge.
--
-- A claim (a master importing, a user VM creating or preparing, a session
-- starting, stopping or migrating) was owned by a pid, which only the
-- machine that runs it can judge.  Now it also names its owner,
-- HOST/BOOT_ID/PID/START (lib/base/proc.h), and a lease: the time until
-- which the owner vouches for it, renewed while the owner runs.  The owner's
-- own machine judges by the process (kill(pid, 0) and its start time); any
-- other machine by the lease.  Rows of an older vdi-tools have no owner and
-- are judged by their pid, as before.

ALTER TABLE masters ADD COLUMN owner TEXT;
ALTER TABLE masters ADD COLUMN lease INTEGER;
ALTER TABLE uservms ADD COLUMN owner TEXT;
ALTER TABLE uservms ADD COLUMN lease INTEGER;
ALTER TABLE sessions ADD COLUMN owner TEXT;
ALTER TABLE sessions ADD COLUMN lease INTEGER;

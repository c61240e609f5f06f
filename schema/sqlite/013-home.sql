-- 013-home.sql - schema 13: a home disk per user, and masters that update.
--
-- A home disk is the user's own qcow2 volume (home-USER.qcow2 in the user
-- VM's pool), apart from the user VM's system disk: every session of the
-- user attaches it read-write, never behind an overlay, so what the user
-- keeps there outlives every session, a migration and a remade system
-- disk.  It belongs to the user, not to the user VM: vm-copy --rm keeps it
-- (the row and the volume) unless told --purge-home, and the user's next
-- user VM gets it back.  Made in two steps like the rest (rule 2): the row
-- is committed 'creating' with the user VM's claim, the volume is made,
-- then it is 'ready' with the user VM.  size is what it was made or grown
-- to; used is its allocation in the pool when last read (at the end of a
-- session, a copy or a resize).
--
-- A master that updates another (vm-master add NEW --replaces OLD, or
-- vm-master replace): OLD.replaced_by names NEW.  A user VM of a replaced
-- master is stale; vm-copy --update remakes it on the new master when it
-- has no session (same row: the same user, hostname, MAC and home disk),
-- with updating_from naming the master it leaves until it is ready again.
-- update_forced: a stale user VM's user waits for the update instead of
-- getting the old desktop once more.  A replaced master that no user VM
-- uses any more is retired by the triggers below; it is removed only on
-- request (vm-master rm).

CREATE TABLE homes (
	id        INTEGER PRIMARY KEY,
	username  TEXT NOT NULL UNIQUE,
	state     TEXT NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'ready')),
	pool      TEXT NOT NULL,
	volume    TEXT NOT NULL,
	size      INTEGER NOT NULL CHECK (size > 0),
	used      INTEGER,
	used_seen INTEGER,
	created   INTEGER NOT NULL,
	resized   INTEGER
);

ALTER TABLE masters ADD COLUMN home INTEGER CHECK (home IS NULL OR home > 0);
ALTER TABLE masters ADD COLUMN replaced_by INTEGER REFERENCES masters(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE masters ADD COLUMN update_forced INTEGER NOT NULL DEFAULT 0 CHECK (update_forced IN (0, 1));
ALTER TABLE uservms ADD COLUMN updating_from INTEGER REFERENCES masters(id);
ALTER TABLE requests ADD COLUMN home INTEGER CHECK (home IS NULL OR home > 0);
CREATE INDEX masters_replaced_by ON masters(replaced_by) WHERE replaced_by IS NOT NULL;
CREATE INDEX uservms_updating ON uservms(updating_from) WHERE updating_from IS NOT NULL;

-- An updated user VM that is ready again (made, or its first boot done): the update is over.
CREATE TRIGGER uservms_updated AFTER UPDATE OF state ON uservms
WHEN NEW.state = 'ready' AND NEW.updating_from IS NOT NULL
BEGIN
	INSERT INTO events (at, who, program, object, action, detail)
		SELECT CAST(strftime('%s', 'now') AS INTEGER), 'vmdb', 'vmdb', NEW.username, 'uservm-updated',
		       'from master ' || o.name || ' to ' || n.name
		FROM masters o, masters n WHERE o.id = NEW.updating_from AND n.id = NEW.master_id;
	UPDATE uservms SET updating_from = NULL WHERE id = NEW.id;
END;

-- A replaced master that no user VM uses any more is retired (never removed).
CREATE TRIGGER uservms_master_left AFTER UPDATE OF master_id ON uservms
WHEN NEW.master_id IS NOT OLD.master_id
BEGIN
	UPDATE masters SET state = 'retired'
	WHERE id = OLD.master_id AND state = 'active' AND replaced_by IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM uservms WHERE master_id = OLD.master_id);
END;

CREATE TRIGGER uservms_master_gone AFTER DELETE ON uservms
BEGIN
	UPDATE masters SET state = 'retired'
	WHERE id = OLD.master_id AND state = 'active' AND replaced_by IS NOT NULL
	  AND NOT EXISTS (SELECT 1 FROM uservms WHERE master_id = OLD.master_id);
END;

-- 010-groups.sql - schema 10: who may use which master, and how much a group may hold.
--
-- A grant lets the members of a system group (NSS: /etc/group, or LDAP and
-- AD through sssd) request and use a master.  While no grant exists at all,
-- everyone may use every master, as before; with one, a user may use a
-- master only through a group of theirs that has it.  A group's limits cap
-- the sessions and the memory its members' desktops hold at once; each
-- desktop session is charged to one group (sessions.grp), chosen when it
-- is placed, in the same transaction, so the caps hold under a storm.

CREATE TABLE grants (
	grp       TEXT NOT NULL,
	master_id INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
	created   INTEGER NOT NULL,
	PRIMARY KEY (grp, master_id)
) WITHOUT ROWID;
CREATE INDEX grants_master ON grants(master_id);

CREATE TABLE group_limits (
	grp          TEXT PRIMARY KEY,
	max_sessions INTEGER CHECK (max_sessions IS NULL OR max_sessions >= 0),
	max_mem      INTEGER CHECK (max_mem IS NULL OR max_mem >= 0)
) WITHOUT ROWID;

ALTER TABLE sessions ADD COLUMN grp TEXT;
CREATE INDEX sessions_live_grp ON sessions(grp) WHERE state <> 'ended' AND grp IS NOT NULL;

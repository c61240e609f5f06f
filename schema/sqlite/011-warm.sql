-- 011-warm.sql - schema 11: warm desktops, a user VM's booted memory saved once and restored per session.
--
-- A warm build is a session of kind 'warm': the user VM boots once more, on
-- a layer of its own (an overlay kept after the build), placed and reserved
-- like a desktop; when the desktop is up its memory is saved into the pool
-- and the session ends 'saved'.  The trigger below makes that build the user
-- VM's warm image (uservms.warm, the build's session id, which names the
-- layer w<ID>-USER.qcow2, the image w<ID>-USER.save and the domain
-- vdi-w<ID>-USER they were saved under) in the same transaction; a build
-- that ends any other way records when it failed (warm_failed), so the
-- next try waits.  A desktop session restored from an image records which
-- (sessions.warm): the files stay while a live session stands on them.
--
-- The kind and reason lists are CHECKs, so sessions is made again (as schema
-- 6 did), with its indexes, triggers and the view of schema 5.

ALTER TABLE uservms ADD COLUMN warm INTEGER;
ALTER TABLE uservms ADD COLUMN warm_built INTEGER;
ALTER TABLE uservms ADD COLUMN warm_failed INTEGER;

DROP VIEW host_usage_check;
CREATE TABLE sessions_new (
	id           INTEGER PRIMARY KEY,
	uservm_id    INTEGER NOT NULL REFERENCES uservms(id),
	host_id      INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('assigned', 'starting', 'running', 'migrating',
	                                            'stopping', 'ended')),
	reason       TEXT CHECK (reason IS NULL OR reason IN
	             ('logoff', 'poweroff', 'expired', 'admin', 'host-lost', 'failed', 'orphan',
	              'disconnected', 'never-connected', 'crashed', 'saved')),
	mem          INTEGER NOT NULL,
	vcpus        INTEGER NOT NULL,
	domain       TEXT,
	overlay      TEXT,
	display_address  TEXT,
	display_port     INTEGER,
	display_password TEXT,
	pid          INTEGER,
	created      INTEGER NOT NULL,
	changed      INTEGER NOT NULL,
	ended        INTEGER,
	kind         TEXT NOT NULL DEFAULT 'desktop' CHECK (kind IN ('desktop', 'prepare', 'warm')),
	address      TEXT,
	address_seen INTEGER,
	started      INTEGER,
	connected_since    INTEGER,
	disconnected_since INTEGER,
	ticket_expires     INTEGER,
	migrate_to   INTEGER REFERENCES hosts(id),
	migrated     INTEGER,
	owner        TEXT,
	lease        INTEGER,
	grp          TEXT,
	warm         INTEGER,
	CHECK ((state = 'ended') = (reason IS NOT NULL)),
	CHECK ((state = 'migrating') = (migrate_to IS NOT NULL)),
	CHECK (migrate_to IS NULL OR migrate_to <> host_id)
);
INSERT INTO sessions_new (id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay, display_address, display_port, display_password, pid, created, changed, ended, kind, address, address_seen, started, connected_since, disconnected_since, ticket_expires, migrate_to, migrated, owner, lease, grp)
	SELECT id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay, display_address, display_port, display_password, pid, created, changed, ended, kind, address, address_seen, started, connected_since, disconnected_since, ticket_expires, migrate_to, migrated, owner, lease, grp
	FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE UNIQUE INDEX sessions_live_uservm ON sessions(uservm_id) WHERE state <> 'ended';
CREATE INDEX sessions_live_host ON sessions(host_id) WHERE state <> 'ended';
CREATE INDEX sessions_uservm ON sessions(uservm_id, id);
CREATE INDEX sessions_migrating ON sessions(migrate_to) WHERE migrate_to IS NOT NULL;
CREATE INDEX sessions_live_grp ON sessions(grp) WHERE state <> 'ended' AND grp IS NOT NULL;
CREATE INDEX sessions_live_warm ON sessions(warm) WHERE state <> 'ended' AND warm IS NOT NULL;
-- vm-watch finds a domain's session by the name the session records.
CREATE INDEX sessions_live_domain ON sessions(domain) WHERE state <> 'ended';

CREATE TRIGGER sessions_count_ins AFTER INSERT ON sessions
WHEN NEW.state <> 'ended' AND NEW.host_id IS NOT NULL
BEGIN
	UPDATE hosts SET sessions = sessions + 1, mem_used = mem_used + NEW.mem,
	       vcpus_used = vcpus_used + NEW.vcpus WHERE id = NEW.host_id;
END;

CREATE TRIGGER sessions_count_upd AFTER UPDATE OF state, host_id, migrate_to, mem, vcpus ON sessions
BEGIN
	UPDATE hosts SET sessions = sessions - 1, mem_used = mem_used - OLD.mem,
	       vcpus_used = vcpus_used - OLD.vcpus
	WHERE id IN (OLD.host_id, OLD.migrate_to) AND OLD.state <> 'ended';
	UPDATE hosts SET sessions = sessions + 1, mem_used = mem_used + NEW.mem,
	       vcpus_used = vcpus_used + NEW.vcpus
	WHERE id IN (NEW.host_id, NEW.migrate_to) AND NEW.state <> 'ended';
END;

CREATE TRIGGER sessions_count_del AFTER DELETE ON sessions
WHEN OLD.state <> 'ended'
BEGIN
	UPDATE hosts SET sessions = sessions - 1, mem_used = mem_used - OLD.mem,
	       vcpus_used = vcpus_used - OLD.vcpus WHERE id IN (OLD.host_id, OLD.migrate_to);
END;

CREATE TRIGGER sessions_crashed AFTER UPDATE OF state ON sessions
WHEN NEW.state = 'ended' AND NEW.reason = 'crashed' AND OLD.state <> 'ended'
BEGIN
	UPDATE hosts SET crashes = crashes + 1 WHERE id = NEW.host_id;
END;

CREATE TRIGGER sessions_prepare_end AFTER UPDATE OF state ON sessions
WHEN NEW.kind = 'prepare' AND NEW.state = 'ended' AND OLD.state <> 'ended'
BEGIN
	INSERT INTO events (at, who, program, object, action, detail)
		SELECT NEW.changed, 'vmdb', 'vmdb', username,
		       CASE WHEN NEW.reason = 'poweroff' THEN 'uservm-prepared' ELSE 'uservm-failed' END,
		       'first boot (session ' || NEW.id || ') ended ' || NEW.reason
		FROM uservms WHERE id = NEW.uservm_id AND state = 'preparing';
	UPDATE uservms SET
		state = CASE WHEN NEW.reason = 'poweroff' THEN 'ready' ELSE 'failed' END,
		prepared = CASE WHEN NEW.reason = 'poweroff' THEN NEW.changed ELSE prepared END,
		pid = NULL
	WHERE id = NEW.uservm_id AND state = 'preparing';
END;

CREATE TRIGGER sessions_count_end AFTER UPDATE OF state ON sessions
WHEN NEW.state = 'ended' AND OLD.state <> 'ended'
BEGIN
	INSERT INTO counters (name, labels, value)
	VALUES ('vdi_session_ends_total', 'kind="' || NEW.kind || '",reason="' || NEW.reason || '"', 1)
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER sessions_count_start AFTER UPDATE OF state ON sessions
WHEN NEW.state = 'running' AND OLD.state = 'starting'
BEGIN
	INSERT INTO counters (name, labels, value) VALUES ('vdi_session_starts_total', 'kind="' || NEW.kind || '"', 1)
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
	INSERT INTO counters (name, labels, value)
	SELECT 'vdi_session_start_seconds_bucket', 'le="' || label || '"', 1 FROM start_buckets
	WHERE NEW.kind = 'desktop' AND NEW.changed - NEW.created <= le
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
	INSERT INTO counters (name, labels, value)
	SELECT 'vdi_session_start_seconds_sum', '', NEW.changed - NEW.created WHERE NEW.kind = 'desktop'
	ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value;
	INSERT INTO counters (name, labels, value)
	SELECT 'vdi_session_start_seconds_count', '', 1 WHERE NEW.kind = 'desktop'
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER sessions_warm_end AFTER UPDATE OF state ON sessions
WHEN NEW.kind = 'warm' AND NEW.state = 'ended' AND OLD.state <> 'ended'
BEGIN
	INSERT INTO events (at, who, program, object, action, detail, session_id)
		SELECT NEW.changed, 'vmdb', 'vmdb', username,
		       CASE WHEN NEW.reason = 'saved' THEN 'uservm-warm' ELSE 'uservm-warm-failed' END,
		       'warm build (session ' || NEW.id || ') ended ' || NEW.reason, NEW.id
		FROM uservms WHERE id = NEW.uservm_id;
	UPDATE uservms SET
		warm = CASE WHEN NEW.reason = 'saved' THEN NEW.id ELSE warm END,
		warm_built = CASE WHEN NEW.reason = 'saved' THEN NEW.changed ELSE warm_built END,
		warm_failed = CASE WHEN NEW.reason = 'saved' THEN NULL ELSE NEW.changed END
	WHERE id = NEW.uservm_id AND state = 'ready';
END;

-- A master that is retired, or whose device profile changes, takes its user
-- VMs' warm images with it: they were saved from its disk with its devices
-- (vm-reap --orphans deletes the files no user VM or live session names).
CREATE TRIGGER masters_warm_drop AFTER UPDATE OF state, profile, firmware, disk_bus, nic_model, video ON masters
WHEN (NEW.state = 'retired' AND OLD.state <> 'retired') OR NEW.profile IS NOT OLD.profile
     OR NEW.firmware IS NOT OLD.firmware OR NEW.disk_bus IS NOT OLD.disk_bus
     OR NEW.nic_model IS NOT OLD.nic_model OR NEW.video IS NOT OLD.video
BEGIN
	UPDATE uservms SET warm = NULL WHERE master_id = NEW.id AND warm IS NOT NULL;
END;

CREATE VIEW host_usage_check AS
	WITH live AS (
		SELECT host_id AS hid, mem, vcpus FROM sessions WHERE state <> 'ended' AND host_id IS NOT NULL
		UNION ALL
		SELECT migrate_to, mem, vcpus FROM sessions WHERE state <> 'ended' AND migrate_to IS NOT NULL
	), per AS (
		SELECT hid, count(*) AS n, sum(mem) AS mem, sum(vcpus) AS vcpus FROM live GROUP BY hid
	)
	SELECT h.id AS host_id, h.name,
	       h.sessions AS sessions, coalesce(p.n, 0) AS sessions_real,
	       h.mem_used AS mem_used, coalesce(p.mem, 0) AS mem_used_real,
	       h.vcpus_used AS vcpus_used, coalesce(p.vcpus, 0) AS vcpus_used_real
	FROM hosts h LEFT JOIN per p ON p.hid = h.id;

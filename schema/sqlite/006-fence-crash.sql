-- 006-fence.sql - schema 6: a host that an administrator vouches is off, and a session that crashed.
--
-- vm-hosts fence records when (fenced), after a fence agent turned the host
-- off or the administrator confirmed it: its sessions are ended host-lost,
-- the overlays they left in the shared pool may be deleted, and its domains
-- are forgotten.  A fenced host stays out of placement (admin maintenance)
-- until vm-hosts undrain; if it answers again meanwhile, vm-reap destroys
-- every domain of ours it still runs.

ALTER TABLE hosts ADD COLUMN fenced INTEGER;

-- A session whose domain died on its own (QEMU crashed or was killed: libvirt
-- says "failed" or "crashed") ends 'crashed', not 'poweroff': the user did
-- not leave, they lost their desktop.  The reason list is a CHECK, so the
-- table is made again (as schema 4 did), with its indexes, triggers and the
-- view of schema 5; each host counts the crashes of its sessions (crashes),
-- kept by a trigger in the same transaction as the session's end.

ALTER TABLE hosts ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;

DROP VIEW host_usage_check;
CREATE TABLE sessions_new (
	id           INTEGER PRIMARY KEY,
	uservm_id    INTEGER NOT NULL REFERENCES uservms(id),
	host_id      INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('assigned', 'starting', 'running', 'migrating',
	                                            'stopping', 'ended')),
	reason       TEXT CHECK (reason IS NULL OR reason IN
	             ('logoff', 'poweroff', 'expired', 'admin', 'host-lost', 'failed', 'orphan',
	              'disconnected', 'never-connected', 'crashed')),
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
	kind         TEXT NOT NULL DEFAULT 'desktop' CHECK (kind IN ('desktop', 'prepare')),
	address      TEXT,
	address_seen INTEGER,
	started      INTEGER,
	connected_since    INTEGER,
	disconnected_since INTEGER,
	ticket_expires     INTEGER,
	migrate_to   INTEGER REFERENCES hosts(id),
	migrated     INTEGER,
	CHECK ((state = 'ended') = (reason IS NOT NULL)),
	CHECK ((state = 'migrating') = (migrate_to IS NOT NULL)),
	CHECK (migrate_to IS NULL OR migrate_to <> host_id)
);
INSERT INTO sessions_new (id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay,
                          display_address, display_port, display_password, pid, created, changed,
                          ended, kind, address, address_seen, started, connected_since,
                          disconnected_since, ticket_expires, migrate_to, migrated)
	SELECT id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay, display_address,
	       display_port, display_password, pid, created, changed, ended, kind, address, address_seen,
	       started, connected_since, disconnected_since, ticket_expires, migrate_to, migrated
	FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE UNIQUE INDEX sessions_live_uservm ON sessions(uservm_id) WHERE state <> 'ended';
CREATE INDEX sessions_live_host ON sessions(host_id) WHERE state <> 'ended';
CREATE INDEX sessions_uservm ON sessions(uservm_id, id);
CREATE INDEX sessions_migrating ON sessions(migrate_to) WHERE migrate_to IS NOT NULL;

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
		SELECT NEW.changed, 'vmdb', 'vmdb', user,
		       CASE WHEN NEW.reason = 'poweroff' THEN 'uservm-prepared' ELSE 'uservm-failed' END,
		       'first boot (session ' || NEW.id || ') ended ' || NEW.reason
		FROM uservms WHERE id = NEW.uservm_id AND state = 'preparing';
	UPDATE uservms SET
		state = CASE WHEN NEW.reason = 'poweroff' THEN 'ready' ELSE 'failed' END,
		prepared = CASE WHEN NEW.reason = 'poweroff' THEN NEW.changed ELSE prepared END,
		pid = NULL
	WHERE id = NEW.uservm_id AND state = 'preparing';
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

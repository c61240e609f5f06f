-- 004-migrate.sql - schema 4: running desktops move between hosts.
--
-- A running session may be 'migrating': vm-migrate committed it, with the
-- host it goes to (migrate_to) and its own pid, before the slow step
-- (rule 2).  Its capacity is reserved on both hosts while it moves, by the
-- same triggers that keep the counters, so a login cannot take the room
-- the move counts on; the source gives its share back only in the
-- transaction that records the move done (host_id = migrate_to).  host_id
-- always names the host its domain runs on.  A migration whose process
-- died is finished or undone by the next vm-migrate or vm-reap, from where
-- libvirt says the domain runs.  A host may name the URI its libvirtd
-- takes migrations on (migration_uri: tcp://ADDRESS[:PORT]).

DROP VIEW host_usage_check;
CREATE TABLE sessions_new (
	id           INTEGER PRIMARY KEY,
	uservm_id    INTEGER NOT NULL REFERENCES uservms(id),
	host_id      INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('assigned', 'starting', 'running', 'migrating',
	                                            'stopping', 'ended')),
	reason       TEXT CHECK (reason IS NULL OR reason IN
	             ('logoff', 'poweroff', 'expired', 'admin', 'host-lost', 'failed', 'orphan',
	              'disconnected', 'never-connected')),
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
	-- while migrating: the host it goes to (its capacity reserved there too)
	migrate_to   INTEGER REFERENCES hosts(id),
	migrated     INTEGER,          -- when it last moved (vm-rebalance lets it rest)
	CHECK ((state = 'ended') = (reason IS NOT NULL)),
	CHECK ((state = 'migrating') = (migrate_to IS NOT NULL)),
	CHECK (migrate_to IS NULL OR migrate_to <> host_id)
);
INSERT INTO sessions_new (id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay,
                          display_address, display_port, display_password, pid, created, changed,
                          ended, kind, address, address_seen, started, connected_since,
                          disconnected_since, ticket_expires)
	SELECT id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay, display_address,
	       display_port, display_password, pid, created, changed, ended, kind, address, address_seen,
	       started, connected_since, disconnected_since, ticket_expires
	FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE UNIQUE INDEX sessions_live_uservm ON sessions(uservm_id) WHERE state <> 'ended';
CREATE INDEX sessions_live_host ON sessions(host_id) WHERE state <> 'ended';
CREATE INDEX sessions_uservm ON sessions(uservm_id, id);
CREATE INDEX sessions_migrating ON sessions(migrate_to) WHERE migrate_to IS NOT NULL;

-- The counters: a session that is not ended counts on its host, and while
-- it migrates on the host it goes to as well.
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
	SELECT h.id AS host_id, h.name,
	       h.sessions AS sessions, count(s.id) AS sessions_real,
	       h.mem_used AS mem_used, coalesce(sum(s.mem), 0) AS mem_used_real,
	       h.vcpus_used AS vcpus_used, coalesce(sum(s.vcpus), 0) AS vcpus_used_real
	FROM hosts h LEFT JOIN sessions s ON (s.host_id = h.id OR s.migrate_to = h.id) AND s.state <> 'ended'
	GROUP BY h.id;

-- Where a host's libvirtd takes migrations (NULL: libvirt's own choice, its
-- host name): tcp://ADDRESS, or tcp://ADDRESS:PORT.
ALTER TABLE hosts ADD COLUMN migration_uri TEXT;

-- 003-connect.sql - schema 3: users connect and leave on their own.
--
-- vm-watch records, per session, when its first SPICE client got past
-- authentication (connected_since) and when its last one left
-- (disconnected_since); vm-reap ends sessions left too long
-- ('disconnected') or never connected to ('never-connected').  A host's
-- watch_since/watch_seen say since when vm-watch has seen every event of
-- that host without a gap, and when it last said so: vm-reap trusts the
-- recorded times only while that view is whole.  vm-connect, the users'
-- web page, records desktop requests and its spent one-time form tokens.

-- The reasons grow two (SQLite cannot change a CHECK: the table is made
-- again, as its documentation's 12 steps say; the view that reads it and
-- its triggers go with it and are made again).
DROP VIEW host_usage_check;
CREATE TABLE sessions_new (
	id           INTEGER PRIMARY KEY,
	uservm_id    INTEGER NOT NULL REFERENCES uservms(id),
	host_id      INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('assigned', 'starting', 'running', 'stopping', 'ended')),
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
	started      INTEGER,          -- when it became running
	connected_since    INTEGER,    -- a viewer got in (NULL: never, as far as vm-watch saw)
	disconnected_since INTEGER,    -- the last viewer left (NULL: one is in, or none ever came)
	ticket_expires     INTEGER,    -- the display password's end (NULL: none)
	CHECK ((state = 'ended') = (reason IS NOT NULL))
);
INSERT INTO sessions_new (id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay,
                          display_address, display_port, display_password, pid, created, changed,
                          ended, kind, address, address_seen, started)
	SELECT id, uservm_id, host_id, state, reason, mem, vcpus, domain, overlay, display_address,
	       display_port, display_password, pid, created, changed, ended, kind, address, address_seen,
	       CASE WHEN state IN ('running', 'stopping') THEN changed END
	FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;
CREATE UNIQUE INDEX sessions_live_uservm ON sessions(uservm_id) WHERE state <> 'ended';
CREATE INDEX sessions_live_host ON sessions(host_id) WHERE state <> 'ended';
CREATE INDEX sessions_uservm ON sessions(uservm_id, id);

CREATE TRIGGER sessions_count_ins AFTER INSERT ON sessions
WHEN NEW.state <> 'ended' AND NEW.host_id IS NOT NULL
BEGIN
	UPDATE hosts SET sessions = sessions + 1, mem_used = mem_used + NEW.mem,
	       vcpus_used = vcpus_used + NEW.vcpus WHERE id = NEW.host_id;
END;

CREATE TRIGGER sessions_count_upd AFTER UPDATE OF state, host_id, mem, vcpus ON sessions
BEGIN
	UPDATE hosts SET sessions = sessions - 1, mem_used = mem_used - OLD.mem,
	       vcpus_used = vcpus_used - OLD.vcpus WHERE id = OLD.host_id AND OLD.state <> 'ended';
	UPDATE hosts SET sessions = sessions + 1, mem_used = mem_used + NEW.mem,
	       vcpus_used = vcpus_used + NEW.vcpus WHERE id = NEW.host_id AND NEW.state <> 'ended';
END;

CREATE TRIGGER sessions_count_del AFTER DELETE ON sessions
WHEN OLD.state <> 'ended' AND OLD.host_id IS NOT NULL
BEGIN
	UPDATE hosts SET sessions = sessions - 1, mem_used = mem_used - OLD.mem,
	       vcpus_used = vcpus_used - OLD.vcpus WHERE id = OLD.host_id;
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
	FROM hosts h LEFT JOIN sessions s ON s.host_id = h.id AND s.state <> 'ended'
	GROUP BY h.id;

-- vm-watch's view of each host: whole since watch_since, last affirmed at
-- watch_seen (a watcher killed stops affirming; a stale view is no view).
ALTER TABLE hosts ADD COLUMN watch_since INTEGER;
ALTER TABLE hosts ADD COLUMN watch_seen INTEGER;

-- Desktops users asked for on the web page (the paper's step 1), until an
-- administrator (vm-copy --requests) makes or rejects them.
CREATE TABLE requests (
	id       INTEGER PRIMARY KEY,
	user     TEXT NOT NULL,
	master   TEXT NOT NULL,       -- by name: the OS and apps the user chose
	mem      INTEGER NOT NULL,
	vcpus    INTEGER NOT NULL,
	disk     INTEGER NOT NULL,
	state    TEXT NOT NULL DEFAULT 'pending'
	         CHECK (state IN ('pending', 'done', 'rejected', 'failed')),
	detail   TEXT,
	created  INTEGER NOT NULL,
	changed  INTEGER NOT NULL
);
-- One pending request per user: asking again replaces it.
CREATE UNIQUE INDEX requests_pending_user ON requests(user) WHERE state = 'pending';

-- Form tokens vm-connect has accepted, until they would have expired
-- anyway: a replayed POST finds its token here and is refused.
CREATE TABLE form_tokens (
	nonce   TEXT PRIMARY KEY,
	expires INTEGER NOT NULL
) WITHOUT ROWID;

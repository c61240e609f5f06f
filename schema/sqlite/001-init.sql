-- 001-init.sql: the VMDB's first schema.
--
-- One SQLite file holds all of vdi-tools' state.  Capacity in use on a
-- host (sessions, memory and vCPUs reserved) is kept in counters on the
-- host row by the triggers on sessions below, in the same transaction as
-- the session change: no C code adjusts them, so no crash or forgotten
-- path can make them drift, and vm-assign reads them without summing
-- every session.  Times are Unix seconds (UTC); sizes are bytes.

CREATE TABLE hosts (
	id              INTEGER PRIMARY KEY,
	name            TEXT NOT NULL UNIQUE,
	uri             TEXT NOT NULL UNIQUE,
	pool            TEXT NOT NULL,
	-- what the administrator wants: take sessions, drain, or keep out
	admin           TEXT NOT NULL DEFAULT 'active'
	                CHECK (admin IN ('active', 'draining', 'maintenance')),
	-- what polling saw: unknown until the first answer
	health          TEXT NOT NULL DEFAULT 'unknown'
	                CHECK (health IN ('unknown', 'up', 'down')),
	max_sessions    INTEGER CHECK (max_sessions IS NULL OR max_sessions >= 0),
	cpu_ratio       REAL NOT NULL DEFAULT 4.0 CHECK (cpu_ratio > 0),
	ram_ratio       REAL NOT NULL DEFAULT 1.0 CHECK (ram_ratio > 0),
	reserve_mem     INTEGER NOT NULL DEFAULT 0 CHECK (reserve_mem >= 0),
	display_address TEXT,
	-- last poll: hardware, load and domains as libvirt reported them
	vcpus           INTEGER NOT NULL DEFAULT 0,
	mem_total       INTEGER NOT NULL DEFAULT 0,
	mem_free        INTEGER NOT NULL DEFAULT 0,
	load            REAL,
	-- capacity in use: maintained by the session triggers only
	sessions        INTEGER NOT NULL DEFAULT 0,
	mem_used        INTEGER NOT NULL DEFAULT 0,
	vcpus_used      INTEGER NOT NULL DEFAULT 0,
	domains_total   INTEGER NOT NULL DEFAULT 0,
	domains_ours    INTEGER NOT NULL DEFAULT 0,
	last_poll       INTEGER,          -- last attempt
	last_ok         INTEGER,          -- last answer
	down_since      INTEGER,          -- first failed attempt since the last answer
	last_error      TEXT,
	created         INTEGER NOT NULL
);

CREATE TABLE host_tags (
	host_id INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
	tag     TEXT NOT NULL,
	PRIMARY KEY (host_id, tag)
) WITHOUT ROWID;

-- The running domains of each host as its last successful poll saw them
-- (the paper's VSCS view).  Ours carry the vdi <metadata> element.
CREATE TABLE host_domains (
	host_id    INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	uuid       TEXT NOT NULL,
	state      TEXT NOT NULL,
	ours       INTEGER NOT NULL,
	session_id INTEGER,
	user       TEXT,
	vcpus      INTEGER,
	mem        INTEGER,
	PRIMARY KEY (host_id, name)
) WITHOUT ROWID;

-- A master is registered in two steps (rule 2): a row in state 'importing'
-- (holding the name, with the importing process's pid) is committed before
-- the slow upload; only a complete, verified image makes it 'active'.
CREATE TABLE masters (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	state        TEXT NOT NULL DEFAULT 'importing'
	             CHECK (state IN ('importing', 'active', 'retired')),
	os           TEXT,
	pool         TEXT NOT NULL,
	volume       TEXT NOT NULL,
	format       TEXT CHECK (format IN ('qcow2', 'raw')),
	virtual_size INTEGER,
	sha256       TEXT,
	source       TEXT NOT NULL,
	mem          INTEGER NOT NULL,
	vcpus        INTEGER NOT NULL,
	disk         INTEGER,
	pid          INTEGER,          -- the importing process, while 'importing'
	created      INTEGER NOT NULL,
	CHECK (state = 'importing' OR (format IS NOT NULL AND virtual_size IS NOT NULL
	       AND sha256 IS NOT NULL AND disk IS NOT NULL))
);

CREATE TABLE master_apps (
	master_id INTEGER NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
	app       TEXT NOT NULL,
	PRIMARY KEY (master_id, app)
) WITHOUT ROWID;

-- One user VM per user: a thin clone of a master, sized as the user asked.
-- 'creating' (with the creating process's pid) is committed before its
-- volumes are made; 'ready' once the disk and the seed exist.
CREATE TABLE uservms (
	id         INTEGER PRIMARY KEY,
	user       TEXT NOT NULL UNIQUE,
	state      TEXT NOT NULL DEFAULT 'creating' CHECK (state IN ('creating', 'ready')),
	master_id  INTEGER NOT NULL REFERENCES masters(id),
	pool       TEXT NOT NULL,
	volume     TEXT NOT NULL,
	seed       TEXT NOT NULL,
	hostname   TEXT NOT NULL,
	mem        INTEGER NOT NULL,
	vcpus      INTEGER NOT NULL,
	disk       INTEGER NOT NULL,
	expires    INTEGER,
	pid        INTEGER,
	created    INTEGER NOT NULL
);
CREATE INDEX uservms_master ON uservms(master_id);

CREATE TABLE uservm_tags (
	uservm_id INTEGER NOT NULL REFERENCES uservms(id) ON DELETE CASCADE,
	tag       TEXT NOT NULL,
	PRIMARY KEY (uservm_id, tag)
) WITHOUT ROWID;

CREATE TABLE uservm_apps (
	uservm_id INTEGER NOT NULL REFERENCES uservms(id) ON DELETE CASCADE,
	app       TEXT NOT NULL,
	PRIMARY KEY (uservm_id, app)
) WITHOUT ROWID;

-- assigned -> starting -> running -> stopping -> ended (with a reason).
CREATE TABLE sessions (
	id           INTEGER PRIMARY KEY,
	uservm_id    INTEGER NOT NULL REFERENCES uservms(id),
	host_id      INTEGER REFERENCES hosts(id) ON DELETE SET NULL,
	state        TEXT NOT NULL CHECK (state IN ('assigned', 'starting', 'running', 'stopping', 'ended')),
	reason       TEXT CHECK (reason IS NULL OR reason IN
	             ('logoff', 'poweroff', 'expired', 'admin', 'host-lost', 'failed', 'orphan')),
	mem          INTEGER NOT NULL,
	vcpus        INTEGER NOT NULL,
	-- what vm-start made, named from the session id (rule 2): vdi-s42-USER, s42-USER.qcow2
	domain       TEXT,
	overlay      TEXT,
	display_address  TEXT,
	display_port     INTEGER,
	display_password TEXT,        -- the VMDB is 0600; shown only with --show-password
	pid          INTEGER,         -- the vm-start or vm-reap working on it
	created      INTEGER NOT NULL,
	changed      INTEGER NOT NULL,
	ended        INTEGER,
	CHECK ((state = 'ended') = (reason IS NOT NULL))
);
-- At most one session that is not ended per user VM.
CREATE UNIQUE INDEX sessions_live_uservm ON sessions(uservm_id) WHERE state <> 'ended';
CREATE INDEX sessions_live_host ON sessions(host_id) WHERE state <> 'ended';
CREATE INDEX sessions_uservm ON sessions(uservm_id, id);

-- The capacity counters on hosts follow the sessions that are not ended.
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

-- What the counters must equal: vdi-tools' tests (and an auditor) compare the two.
CREATE VIEW host_usage_check AS
	SELECT h.id AS host_id, h.name,
	       h.sessions AS sessions, count(s.id) AS sessions_real,
	       h.mem_used AS mem_used, coalesce(sum(s.mem), 0) AS mem_used_real,
	       h.vcpus_used AS vcpus_used, coalesce(sum(s.vcpus), 0) AS vcpus_used_real
	FROM hosts h LEFT JOIN sessions s ON s.host_id = h.id AND s.state <> 'ended'
	GROUP BY h.id;

-- Every state change, for audit: when, who, which program, what.
CREATE TABLE events (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	who     TEXT NOT NULL,
	program TEXT NOT NULL,
	object  TEXT NOT NULL,
	action  TEXT NOT NULL,
	detail  TEXT
);

-- Small named values (the round-robin cursor, for one).
CREATE TABLE kv (
	key   TEXT PRIMARY KEY,
	value TEXT
) WITHOUT ROWID;

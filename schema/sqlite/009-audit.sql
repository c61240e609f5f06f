-- 009-audit.sql - schema 9: the audit trail as people read it, and the counters behind the metrics.
--
-- An event names the session and the host it concerns where it has them,
-- so vm-log can filter by either without reading the details; events are
-- read by time (vm-log --since) and pruned by time (vm-reap, events_keep).
--
-- counters holds the totals that only grow (Prometheus counters and the
-- buckets of a histogram), one row per sample: its name and its labels as
-- the exposition writes them.  The triggers below keep them in the same
-- transaction as the change they count, as schema 1's triggers keep the
-- hosts' capacity: no forgotten path can miss one, and pruning events
-- never lowers a total.  vdi-db metrics prints them.

ALTER TABLE events ADD COLUMN session_id INTEGER;
ALTER TABLE events ADD COLUMN host TEXT;
CREATE INDEX events_at ON events(at);
CREATE INDEX events_session ON events(session_id) WHERE session_id IS NOT NULL;

CREATE TABLE counters (
	name   TEXT NOT NULL,
	labels TEXT NOT NULL DEFAULT '',
	value  REAL NOT NULL DEFAULT 0,
	PRIMARY KEY (name, labels)
) WITHOUT ROWID;

-- The bounds of the time-to-desktop histogram, in seconds (+Inf is its _count).
CREATE TABLE start_buckets (le REAL PRIMARY KEY, label TEXT NOT NULL);
INSERT INTO start_buckets VALUES (1, '1'), (2, '2'), (5, '5'), (10, '10'), (20, '20'), (30, '30'),
	(60, '60'), (120, '120'), (300, '300'), (600, '600');

-- Every event counts under its action.
CREATE TRIGGER events_count AFTER INSERT ON events
BEGIN
	INSERT INTO counters (name, labels, value) VALUES ('vdi_events_total', 'action="' || NEW.action || '"', 1)
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
END;

-- A session's end, by kind and reason.
CREATE TRIGGER sessions_count_end AFTER UPDATE OF state ON sessions
WHEN NEW.state = 'ended' AND OLD.state <> 'ended'
BEGIN
	INSERT INTO counters (name, labels, value)
	VALUES ('vdi_session_ends_total', 'kind="' || NEW.kind || '",reason="' || NEW.reason || '"', 1)
	ON CONFLICT (name, labels) DO UPDATE SET value = value + 1;
END;

-- A session that runs: its kind, and for a desktop the time from its
-- placement to its domain running (the user's wait, the viewer aside).
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

-- 003-audit.sql - events name their session and host; the counters behind
-- the metrics, kept by triggers (as schema/sqlite/009-audit.sql).

ALTER TABLE events ADD COLUMN session_id bigint;
ALTER TABLE events ADD COLUMN host text COLLATE "C";
CREATE INDEX events_at ON events(at);
CREATE INDEX events_session ON events(session_id) WHERE session_id IS NOT NULL;

CREATE TABLE counters (
	name   text COLLATE "C" NOT NULL,
	labels text COLLATE "C" NOT NULL DEFAULT '',
	value  double precision NOT NULL DEFAULT 0,
	PRIMARY KEY (name, labels)
);

CREATE TABLE start_buckets (le double precision PRIMARY KEY, label text COLLATE "C" NOT NULL);
INSERT INTO start_buckets VALUES (1, '1'), (2, '2'), (5, '5'), (10, '10'), (20, '20'), (30, '30'),
	(60, '60'), (120, '120'), (300, '300'), (600, '600');

CREATE FUNCTION counter_add(n text, l text, v double precision) RETURNS void LANGUAGE sql AS $$
	INSERT INTO counters (name, labels, value) VALUES (n, l, v)
	ON CONFLICT (name, labels) DO UPDATE SET value = counters.value + excluded.value;
$$;

CREATE FUNCTION events_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM counter_add('vdi_events_total', 'action="' || NEW.action || '"', 1);
	RETURN NULL;
END $$;
CREATE TRIGGER events_count AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_count();

CREATE FUNCTION sessions_count_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM counter_add('vdi_session_ends_total', 'kind="' || NEW.kind || '",reason="' || NEW.reason || '"', 1);
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_count_end AFTER UPDATE OF state ON sessions
	FOR EACH ROW WHEN (NEW.state = 'ended' AND OLD.state <> 'ended')
	EXECUTE FUNCTION sessions_count_end();

CREATE FUNCTION sessions_count_start() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM counter_add('vdi_session_starts_total', 'kind="' || NEW.kind || '"', 1);
	IF NEW.kind = 'desktop' THEN
		PERFORM counter_add('vdi_session_start_seconds_bucket', 'le="' || label || '"', 1)
		FROM start_buckets WHERE NEW.changed - NEW.created <= le;
		PERFORM counter_add('vdi_session_start_seconds_sum', '', NEW.changed - NEW.created);
		PERFORM counter_add('vdi_session_start_seconds_count', '', 1);
	END IF;
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_count_start AFTER UPDATE OF state ON sessions
	FOR EACH ROW WHEN (NEW.state = 'running' AND OLD.state = 'starting')
	EXECUTE FUNCTION sessions_count_start();

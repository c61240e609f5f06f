-- 005-warm.sql - warm desktops: a user VM's booted memory saved once and
-- restored per session (as schema/sqlite/011-warm.sql, which says why).

ALTER TABLE uservms ADD COLUMN warm bigint;
ALTER TABLE uservms ADD COLUMN warm_built bigint;
ALTER TABLE uservms ADD COLUMN warm_failed bigint;

ALTER TABLE sessions DROP CONSTRAINT sessions_kind_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_kind_check CHECK (kind IN ('desktop', 'prepare', 'warm'));
ALTER TABLE sessions DROP CONSTRAINT sessions_reason_check;
ALTER TABLE sessions ADD CONSTRAINT sessions_reason_check CHECK (reason IS NULL OR reason IN
	('logoff', 'poweroff', 'expired', 'admin', 'host-lost', 'failed', 'orphan',
	 'disconnected', 'never-connected', 'crashed', 'saved'));
ALTER TABLE sessions ADD COLUMN warm bigint;
CREATE INDEX sessions_live_warm ON sessions(warm) WHERE state <> 'ended' AND warm IS NOT NULL;
-- vm-watch finds a domain's session by the name the session records.
CREATE INDEX sessions_live_domain ON sessions(domain) WHERE state <> 'ended';

CREATE FUNCTION sessions_warm_end() RETURNS trigger LANGUAGE plpgsql AS $$
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
	RETURN NULL;
END $$;
CREATE TRIGGER sessions_warm_end AFTER UPDATE OF state ON sessions
	FOR EACH ROW WHEN (NEW.kind = 'warm' AND NEW.state = 'ended' AND OLD.state <> 'ended')
	EXECUTE FUNCTION sessions_warm_end();

CREATE FUNCTION masters_warm_drop() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE uservms SET warm = NULL WHERE master_id = NEW.id AND warm IS NOT NULL;
	RETURN NULL;
END $$;
CREATE TRIGGER masters_warm_drop AFTER UPDATE OF state, profile, firmware, disk_bus, nic_model, video ON masters
	FOR EACH ROW WHEN ((NEW.state = 'retired' AND OLD.state <> 'retired') OR NEW.profile IS DISTINCT FROM OLD.profile
	                   OR NEW.firmware IS DISTINCT FROM OLD.firmware OR NEW.disk_bus IS DISTINCT FROM OLD.disk_bus
	                   OR NEW.nic_model IS DISTINCT FROM OLD.nic_model OR NEW.video IS DISTINCT FROM OLD.video)
	EXECUTE FUNCTION masters_warm_drop();

-- 012-console.sql - schema 12: the desktop in a browser tab (vm-console).
--
-- A desktop session gets a VNC display beside SPICE: its port as libvirt
-- gave it (sessions.console_port; NULL: no browser console) and its
-- password (console_password, at most 8 characters as VNC allows), which
-- only vm-console uses: it authenticates to QEMU itself, and the browser
-- never sees it.  A browser reaches it through vm-console with a one-time
-- console ticket (a form token, token.h, spent in form_tokens).
--
-- consoles records each browser console vm-console relays: opened when the
-- websocket opens, closed when it closes, by which vm-console (instance:
-- host name and pid).  A vm-console that starts closes the rows its
-- previous run left open ('restart'); vm-reap closes those of ended
-- sessions ('ended').  vm-ls counts the open ones per session.

ALTER TABLE sessions ADD COLUMN console_port INTEGER;
ALTER TABLE sessions ADD COLUMN console_password TEXT;

CREATE TABLE consoles (
	id         INTEGER PRIMARY KEY,
	session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	username   TEXT NOT NULL,
	instance   TEXT NOT NULL,       -- which vm-console relays it: "HOST:PID"
	peer       TEXT,                -- the browser's address as the web server passed it
	opened     INTEGER NOT NULL,
	closed     INTEGER,
	reason     TEXT CHECK (reason IS NULL OR reason IN
	           ('browser', 'desktop', 'idle', 'limit', 'error', 'restart', 'ended')),
	bytes_in   INTEGER NOT NULL DEFAULT 0,  -- browser to desktop
	bytes_out  INTEGER NOT NULL DEFAULT 0,  -- desktop to browser
	CHECK ((closed IS NULL) = (reason IS NULL))
);
CREATE INDEX consoles_open ON consoles(session_id) WHERE closed IS NULL;
CREATE INDEX consoles_open_user ON consoles(username) WHERE closed IS NULL;

-- A session that ends takes its consoles with it (the relay's own close comes after, a no-op).
CREATE TRIGGER sessions_console_end AFTER UPDATE OF state ON sessions
	WHEN NEW.state = 'ended' AND OLD.state <> 'ended'
BEGIN
	UPDATE consoles SET closed = NEW.changed, reason = 'ended' WHERE session_id = NEW.id AND closed IS NULL;
END;

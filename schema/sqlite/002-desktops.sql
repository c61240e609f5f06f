-- 002-desktops.sql: desktops people can use.
--
-- A master carries the device profile its sessions get (linux, windows,
-- windows11) with the overrides it may declare, whether its guest prepares
-- itself on first boot (cloud-init or cloudbase-init) and whether it serves
-- RDP.  A host names the network its sessions join.  A user VM is prepared
-- once, by a first boot on its own disk: creating -> preparing -> ready (or
-- failed).  That first boot runs as a session of kind 'prepare', so it is
-- placed, reserved, watched and reaped like any desktop.

ALTER TABLE masters ADD COLUMN profile TEXT NOT NULL DEFAULT 'linux'
	CHECK (profile IN ('linux', 'windows', 'windows11'));
-- NULL: what the profile says
ALTER TABLE masters ADD COLUMN firmware TEXT CHECK (firmware IS NULL OR firmware IN ('bios', 'efi'));
ALTER TABLE masters ADD COLUMN disk_bus TEXT CHECK (disk_bus IS NULL OR disk_bus IN ('virtio', 'sata', 'scsi'));
ALTER TABLE masters ADD COLUMN nic_model TEXT
	CHECK (nic_model IS NULL OR nic_model IN ('virtio', 'e1000e', 'rtl8139'));
ALTER TABLE masters ADD COLUMN video TEXT CHECK (video IS NULL OR video IN ('virtio', 'qxl', 'vga'));
-- Masters registered before preparation existed made ready user VMs at once.
ALTER TABLE masters ADD COLUMN prepare TEXT NOT NULL DEFAULT 'none' CHECK (prepare IN ('cloud-init', 'none'));
ALTER TABLE masters ADD COLUMN rdp INTEGER NOT NULL DEFAULT 0 CHECK (rdp IN (0, 1));

-- The network a host's sessions join: a libvirt network, or a bridge; neither: no NIC.
ALTER TABLE hosts ADD COLUMN network TEXT;
ALTER TABLE hosts ADD COLUMN bridge TEXT;

ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'desktop' CHECK (kind IN ('desktop', 'prepare'));
-- The guest's address as libvirt last reported it (DHCP lease or ARP), and when.
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN address_seen INTEGER;

-- The user VM states grow 'preparing' and 'failed' (SQLite cannot change a
-- CHECK: the table is made again, as its documentation's 12 steps say;
-- foreign keys are off while migrations run and checked before commit).
CREATE TABLE uservms_new (
	id         INTEGER PRIMARY KEY,
	user       TEXT NOT NULL UNIQUE,
	state      TEXT NOT NULL DEFAULT 'creating'
	           CHECK (state IN ('creating', 'preparing', 'ready', 'failed')),
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
	created    INTEGER NOT NULL,
	prepared   INTEGER           -- when its first boot ended well
);
INSERT INTO uservms_new (id, user, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk,
                         expires, pid, created)
	SELECT id, user, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, expires, pid, created
	FROM uservms;
DROP TABLE uservms;
ALTER TABLE uservms_new RENAME TO uservms;
CREATE INDEX uservms_master ON uservms(master_id);

-- A first boot that ends by powering off made the user VM ready; any
-- other end (timeout, crash seen as failure, an admin, a lost host) failed
-- it.  In the same transaction as the session's end, whoever ends it.
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

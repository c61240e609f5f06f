-- 005-placement.sql - schema 5: a login reads the best few hosts, not all.
--
-- vm-assign's quick path walks the hosts that can take sessions (active,
-- up) in the order of its policy's key and stops as soon as the rest
-- cannot win; these partial indexes keep that order as the session
-- triggers change the counters, so the cost of a login does not grow with
-- the number of hosts.  The keys are virtual generated columns, computed
-- as lib/sched.c computes them (double arithmetic, truncating casts):
--   mem_cap   memory the host may give out: mem_total * ram_ratio - reserve_mem
--   mem_key   the memory share in use plus a tenth of the polled load:
--             least-load's score after placing is at least this plus the
--             request over mem_cap, so among hosts of one mem_cap a walk in
--             this order can stop at the first that cannot win
--   mem_room  memory left: pack takes, among hosts of one mem_cap, the
--             first whose room still fits
-- Hosts are walked one mem_cap at a time (hardware comes in a few sizes).
-- --explain, and the reasons no host fits, still read every host.

ALTER TABLE hosts ADD COLUMN mem_cap INTEGER
	GENERATED ALWAYS AS (max(CAST(mem_total * ram_ratio AS INTEGER) - reserve_mem, 0)) VIRTUAL;
ALTER TABLE hosts ADD COLUMN mem_key REAL
	GENERATED ALWAYS AS (CASE WHEN mem_cap > 0 THEN mem_used * 1.0 / mem_cap ELSE 1.0 END
	                     + 0.1 * coalesce(load, 0)) VIRTUAL;
ALTER TABLE hosts ADD COLUMN mem_room INTEGER
	GENERATED ALWAYS AS (mem_cap - mem_used) VIRTUAL;

CREATE INDEX hosts_by_name ON hosts(pool, name) WHERE admin = 'active' AND health = 'up';
CREATE INDEX hosts_by_sessions ON hosts(pool, sessions, name) WHERE admin = 'active' AND health = 'up';
CREATE INDEX hosts_by_load ON hosts(pool, mem_cap, mem_key, name) WHERE admin = 'active' AND health = 'up';
CREATE INDEX hosts_by_room ON hosts(pool, mem_cap, mem_room, name) WHERE admin = 'active' AND health = 'up';

-- The counters' check, as schema 4 has it, but summed once per host from
-- the live sessions instead of a join on host_id OR migrate_to, which no
-- index serves (minutes at 10,000 hosts and 200,000 sessions).
DROP VIEW host_usage_check;
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

-- 004-groups.sql - grants of masters to system groups, and the groups'
-- limits (as schema/sqlite/010-groups.sql).

CREATE TABLE grants (
	grp       text COLLATE "C" NOT NULL,
	master_id bigint NOT NULL REFERENCES masters(id) ON DELETE CASCADE,
	created   bigint NOT NULL,
	PRIMARY KEY (grp, master_id)
);
CREATE INDEX grants_master ON grants(master_id);

CREATE TABLE group_limits (
	grp          text COLLATE "C" PRIMARY KEY,
	max_sessions bigint CHECK (max_sessions IS NULL OR max_sessions >= 0),
	max_mem      bigint CHECK (max_mem IS NULL OR max_mem >= 0)
);

ALTER TABLE sessions ADD COLUMN grp text COLLATE "C";
CREATE INDEX sessions_live_grp ON sessions(grp) WHERE state <> 'ended' AND grp IS NOT NULL;

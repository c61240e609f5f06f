#!/usr/bin/env bats
# The VMDB and settings, as every program meets them (vm-hosts here, as it
# is the first): creation, migrations, refusals, settings precedence,
# locking.  No lab needed: only --no-check hosts.

load helpers

setup() {
	common_setup
}

@test "a VMDB in a missing folder is created, mode 0600, with the current schema and WAL" {
	local db=$BATS_TEST_TMPDIR/a/b/c/vdi.db
	run_vdi vm-hosts --db "$db" list
	[ -f "$db" ]
	[ "$(stat -c %a "$db")" = 600 ]
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/a/b/c")" = 750 ]
	[ "$(sqlite3 "$db" 'pragma journal_mode')" = wal ]
	[ "$(sqlite3 "$db" 'pragma user_version')" -ge 1 ]
}

@test "a VMDB from a newer vdi-tools is refused and left untouched" {
	vm-hosts add h1 qemu:///system --no-check -q
	if on_pg; then
		sql 'update vdi_meta set schema_version = 999'
	else
		sql 'pragma user_version = 999'
	fi
	local before
	before=$(vmdb_sum)
	run_vdi 1 vm-hosts list
	assert_output --partial "schema version 999, newer than this vdi-tools knows"
	run_vdi 1 vm-hosts add h2 qemu+ssh://x/system --no-check
	[ "$(vmdb_sum)" = "$before" ]
}

@test "a file that is not an SQLite database is refused with one clear line" {
	sqlite_only "a file"
	echo "hello, I am not a database, but I am long enough to have a header of sorts....." >"$VDI_DB"
	run_vdi 1 vm-hosts list
	assert_output "vm-hosts: error: $VDI_DB is not a VMDB (not an SQLite database)"
}

@test "a read-only VMDB: reads work, a change fails with a clear error and exit 1" {
	sqlite_only "file modes"
	vm-hosts add h1 qemu:///system --no-check -q
	local dir=$BATS_TEST_TMPDIR
	# Root ignores file modes: make the folder read-only with a bind mount in a private namespace.
	run unshare -m --propagation private sh -c "mount --bind -o ro '$dir' '$dir' &&
		vm-hosts --db '$dir/vdi.db' list -o tsv && vm-hosts --db '$dir/vdi.db' drain h1"
	assert_failure 1
	assert_line --index 0 --regexp $'^h1\t'
	assert_output --partial "is read-only"
	run_vdi vm-hosts list -o tsv
	assert_output --regexp $'^h1\t[^\t]+\tunknown\t'
}

@test "migrations run once even when many commands meet a new VMDB at once" {
	local i pids=()
	for i in $(seq 1 12); do
		vm-hosts list >/dev/null 2>"$BATS_TEST_TMPDIR/err.$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	cat "$BATS_TEST_TMPDIR"/err.* >&2
	[ -z "$(cat "$BATS_TEST_TMPDIR"/err.*)" ]
	if on_pg; then
		[ "$(sql "select count(*) from pg_tables where tablename = 'hosts'")" = 1 ]
		[ "$(sql "select schema_version from vdi_meta")" -ge 1 ]
	else
		[ "$(sql "select count(*) from sqlite_master where name = 'hosts'")" = 1 ]
	fi
}

@test "settings: --db beats VDI_DB beats the config file beats the default" {
	local d=$BATS_TEST_TMPDIR
	echo "db = $d/from-file.db" >"$VDI_CONFIG"
	unset VDI_DB
	vm-hosts list
	[ -f "$d/from-file.db" ]
	VDI_DB=$d/from-env.db vm-hosts list
	[ -f "$d/from-env.db" ]
	VDI_DB=$d/from-env.db vm-hosts --db "$d/from-opt.db" list
	[ -f "$d/from-opt.db" ]
}

@test "config file errors name the file and line; a missing VDI_CONFIG is an error" {
	printf '# comment\n\npoll_timeout = 2s\nfrobnicate = 1\n' >"$VDI_CONFIG"
	run_vdi 2 vm-hosts list
	assert_output "vm-hosts: error: $VDI_CONFIG:4: unknown setting 'frobnicate'"
	printf 'poll_timeout = -5s\n' >"$VDI_CONFIG"
	run_vdi 2 vm-hosts list
	assert_output --partial "$VDI_CONFIG:1: poll_timeout: invalid duration '-5s': must not be negative"
	printf 'policy = fastest\n' >"$VDI_CONFIG"
	run_vdi 2 vm-hosts list
	assert_output --partial "unknown policy 'fastest'"
	VDI_CONFIG=$BATS_TEST_TMPDIR/none.conf run_vdi 1 vm-hosts list
	assert_output --partial "cannot read config file"
}

@test "poll_timeout from the config file bounds a hung host" {
	echo 'poll_timeout = 1500ms' >"$VDI_CONFIG"
	hung_socket "$BATS_TEST_TMPDIR/hung-sock"
	vm-hosts -q add hung "qemu+unix:///system?socket=$BATS_TEST_TMPDIR/hung-sock" --no-check
	SECONDS=0
	run_vdi 75 vm-hosts poll
	local took=$SECONDS
	stop_pidfile "$BATS_TEST_TMPDIR/hung-sock.pid"
	assert_output --partial "no answer within 1.5 s"
	[ "$took" -le 3 ]
}

@test "a VMDB locked past the busy timeout is exit 75 (try again), not a crash" {
	echo 'busy_timeout = 300ms' >"$VDI_CONFIG"
	vm-hosts -q add h1 qemu:///system --no-check
	# Hold the write lock from another process for a while.
	local holder
	hold_write_lock 3
	run_vdi 75 vm-hosts drain h1
	wait "$holder"
	assert_output --partial "is busy"
	run_vdi vm-hosts drain h1
}

@test "every change is an event with who, program, object and action" {
	SUDO_USER=helpdesk1 vm-hosts -q add h1 qemu:///system --no-check --tag x
	USER=admin2 SUDO_USER= vm-hosts drain h1
	run sql "select who || '|' || program || '|' || object || '|' || action || '|' || coalesce(detail, '') from events order by id"
	assert_line --index 0 "helpdesk1|vm-hosts|h1|host-add|uri=qemu:///system pool=vdi tags=x"
	assert_line --index 1 "admin2|vm-hosts|h1|host-admin|draining"
}

@test "--help prints the synopsis and exits 0; --version names the program" {
	run_vdi vm-hosts --help
	assert_line --index 0 --partial "usage: vm-hosts"
	run_vdi vm-hosts --version
	assert_output --regexp '^vm-hosts \(vdi-tools\) [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "a login's quick pick (a few hosts from the policy's index) is --explain's pick (every host)" {
	local p u quick full
	vm-hosts -q list
	# 60 hosts of 4 sizes, two ram ratios, loads and use all over the place; users of 1-4 GiB.
	sql "insert into masters (name, state, os, pool, volume, format, virtual_size, sha256, source, mem, vcpus,
		disk, created) values ('m', 'active', 'linux', 'vdi', 'master-m', 'qcow2', 1, 'x', 'file:///m', 1, 1, 1, 0)"
	for i in $(seq 1 60); do
		sql "insert into hosts (name, uri, pool, health, vcpus, mem_total, mem_free, load, last_poll, last_ok,
			created, ram_ratio, cpu_ratio) values ('h$i', 'qemu+ssh://h$i/system', 'vdi', 'up', 16,
			$(( (i % 4 + 1) * 32 * 1073741824 )), 0, $(( i * 7 % 10 )) / 20.0, $(date +%s), $(date +%s), 0,
			$(( i % 2 )) * 0.5 + 1, 4)"
	done
	# Sessions once every host is there: the triggers count them on their hosts.
	for i in $(seq 1 60); do
		sql "insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
			values ('f$i', 'ready', 1, 'vdi', 'v$i', 's$i', 'f$i', $(( (i * 13 % 16 + 1) * 1073741824 )), 1 + $i % 3, 1, 0)"
		sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed)
			values ($i, $(( i * 37 % 60 + 1 )), 'running', $(( (i * 13 % 16 + 1) * 1073741824 )), 1 + $i % 3, 0, 0)"
	done
	for i in $(seq 1 12); do
		sql "insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
			values ('u$i', 'ready', 1, 'vdi', 'uv$i', 'us$i', 'u$i', $(( (i % 4 + 1) * 1073741824 )), 1 + $i % 2, 1, 0)"
	done
	for p in least-sessions least-load pack round-robin sticky random2; do
		for u in u1 u2 u3 u4 u5 u6 u7 u8 u9 u10 u11 u12; do
			run_vdi vm-assign -n -p "$p" --seed 3 -o tsv "$u"
			quick=$(cut -f2 <<<"$output")
			run_vdi vm-assign -n -p "$p" --seed 3 --explain -o json "$u"
			full=$(python3 -c 'import json,sys; print(*[r["host"] for r in json.load(sys.stdin) if r["chosen"]])' <<<"$output")
			[ -n "$quick" ]
			# random2 draws differently on the two paths: its pick must be eligible, not equal.
			if [ "$p" = random2 ]; then
				python3 -c 'import json,sys; r=[r for r in json.load(sys.stdin) if r["host"] == sys.argv[1]]; sys.exit(r[0]["verdict"] != "eligible")' "$quick" <<<"$output" ||
					fail "random2 picked $quick, which is not eligible"
			else
				[ "$quick" = "$full" ] || fail "$p for $u: quick path $quick, --explain $full"
			fi
		done
	done
	# The counters' check (schema 5's view) agrees with what the triggers kept.
	run sql "select name, sessions, sessions_real, mem_used, mem_used_real from host_usage_check
		where sessions <> sessions_real or mem_used <> mem_used_real"
	assert_output ""
}

# vmdb_fill_small DB: two hosts, a master, three user VMs, two sessions (by vm-assign).
vmdb_fill_small() {
	VDI_DB=$1 vm-hosts -q add h1 qemu+ssh://h1/system --no-check
	VDI_DB=$1 vm-hosts -q add h2 qemu+ssh://h2/system --no-check
	sqlite3 "$1" "update hosts set health = 'up', vcpus = 8, mem_total = 17179869184, last_ok = $(date +%s),
		last_poll = $(date +%s);
		insert into masters (name, state, os, pool, volume, format, virtual_size, sha256, source, mem, vcpus,
		disk, created) values ('m', 'active', 'linux', 'vdi', 'master-m', 'qcow2', 1, 'x', 'file:///m', 1, 1, 1, 0);
		insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
		values ('ann', 'ready', 1, 'vdi', 'v1', 's1', 'ann', 67108864, 1, 1, 0),
		('bob', 'ready', 1, 'vdi', 'v2', 's2', 'bob', 67108864, 1, 1, 0),
		('cy', 'ready', 1, 'vdi', 'v3', 's3', 'cy', 67108864, 1, 1, 0);
		insert into masters (name, state, os, pool, volume, format, virtual_size, sha256, source, mem, vcpus,
		disk, created) values ('m2', 'active', 'linux', 'vdi', 'master-m2', 'qcow2', 1, 'x', 'file:///m2', 1, 1, 1, 0);
		update masters set replaced_by = 2 where id = 1;
		insert into homes (username, state, pool, volume, size, created) values ('ann', 'ready', 'vdi',
		'home-ann.qcow2', 16777216, 0)"
	VDI_DB=$1 vm-assign -q ann bob
	# A browser console of ann's session, closed.
	sqlite3 "$1" "insert into consoles (session_id, username, instance, opened, closed, reason)
		values (1, 'ann', 'x/y/1/2', 1, 2, 'browser')"
}

@test "vdi-db copy moves an SQLite VMDB into a new database, checked; refused when in use, not empty or missing" {
	local src=$BATS_TEST_TMPDIR/src.db target holder
	vmdb_fill_small "$src"
	# The target: this run's database (PostgreSQL), or a new SQLite file.
	if on_pg; then target=$VDI_DB; else target=$BATS_TEST_TMPDIR/copy.db; fi
	# In use: a vm-watch holds its lock on the source.
	VDI_DB=$src hold_singleton watch 8
	VDI_DB=$src run_vdi 5 vdi-db copy "$target"
	assert_output --partial "is in use: a vm-watch runs on it"
	kill "$holder"
	wait "$holder" || true
	sleep 0.2
	VDI_DB=$src run_vdi vdi-db copy -o tsv "$target"
	assert_line $'sessions\t2\t2'
	assert_line $'consoles\t1\t1'
	assert_line $'uservms\t3\t3'
	# A master that points at a later one (replaced_by), and a home disk.
	assert_line $'masters\t2\t2'
	assert_line $'homes\t1\t1'
	assert_line $'events\t4\t4'
	VDI_DB=$target run_vdi vdi-db check -o tsv
	assert_line $'hosts\t2'
	# The copy works on: the counters came out right, and ids go on past the copied ones.
	VDI_DB=$target run_vdi vm-assign -o tsv cy
	assert_output --regexp $'^cy\th[12]\t3$'
	assert_equal "$(VDI_DB=$target vm-hosts list -o tsv | cut -f1,7 | paste -sd' ')" "$(VDI_DB=$src vm-hosts list -o tsv | cut -f1,7 | paste -sd' ')"
	# A copy goes into an empty database only; a missing source is no source.
	VDI_DB=$src run_vdi 5 vdi-db copy "$target"
	assert_output --partial "is not empty"
	VDI_DB=$BATS_TEST_TMPDIR/none.db run_vdi 3 vdi-db copy "$target"
	[ ! -e "$BATS_TEST_TMPDIR/none.db" ]
}

@test "vdi-db check finds counters that drifted; a copy of such a VMDB is refused and leaves the target empty" {
	local src=$BATS_TEST_TMPDIR/src.db target
	vmdb_fill_small "$src"
	sqlite3 "$src" "update hosts set sessions = 7 where name = 'h1'"
	VDI_DB=$src run_vdi 1 vdi-db check -o tsv
	assert_output --partial "1 hosts' capacity counters disagree"
	if on_pg; then target=$VDI_DB; else target=$BATS_TEST_TMPDIR/copy.db; fi
	VDI_DB=$src run_vdi 1 vdi-db copy "$target"
	assert_output --regexp "host 1: its sessions counter is 7 in the VMDB but its sessions add up to 1 in the copy"
	VDI_DB=$target run_vdi vdi-db check -o tsv
	assert_line $'hosts\t0'
	assert_line $'events\t0'
}

# one_of_each: a VMDB with master m, host h1 (up) and user VM u1 (ready), made in SQL.
one_of_each() {
	vm-hosts -q list
	sql "insert into masters (name, state, os, pool, volume, format, virtual_size, sha256, source, mem, vcpus,
		disk, created) values ('m', 'active', 'linux', 'vdi', 'master-m', 'qcow2', 1, 'x', 'file:///m', 1, 1, 1, 0)"
	sql "insert into hosts (name, uri, pool, health, vcpus, mem_total, mem_free, load, last_poll, last_ok, created)
		values ('h1', 'qemu+ssh://h1/system', 'vdi', 'up', 16, 34359738368, 0, 0, 0, 0, 0)"
	sql "insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
		values ('u1', 'ready', 1, 'vdi', 'v1', 's1', 'u1', 1073741824, 1, 1, 0)"
}

@test "a warm build that ends saved makes its user VM warm in the same transaction; a failed one, a retired master drop nothing else" {
	one_of_each
	# A build that fails: the user VM stays cold, the failure is recorded.
	sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed, kind)
		values (1, 1, 'starting', 1073741824, 1, 0, 0, 'warm')"
	sql "update sessions set state = 'ended', reason = 'failed', changed = 7 where id = 1"
	assert_equal "$(sql "select coalesce(warm, 0) || ' ' || warm_failed from uservms")" "0 7"
	# One that ends saved: the user VM's image is that build's, in the same statement's transaction.
	sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed, kind)
		values (1, 1, 'stopping', 1073741824, 1, 0, 0, 'warm')"
	sql "update sessions set state = 'ended', reason = 'saved', changed = 9 where id = 2"
	assert_equal "$(sql "select warm || ' ' || warm_built || ' ' || coalesce(warm_failed, 0) from uservms")" "2 9 0"
	assert_equal "$(sql "select action from events where session_id = 2 and action like 'uservm-warm%'")" uservm-warm
	assert_equal "$(sql "select sessions || ' ' || mem_used from hosts")" "0 0"
	# 'saved' ends only what it may: the reason list holds it; a made-up kind does not pass.
	run sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed, kind)
		values (1, 1, 'assigned', 1, 1, 0, 0, 'hot')"
	assert_failure
	# The master retired: its user VMs' images are dropped (the files are vm-reap --orphans').
	run_vdi vm-master retire m
	assert_equal "$(sql "select coalesce(warm, 0) from uservms")" 0
}

@test "a session that ends closes its browser consoles in the same transaction; a console's close needs its reason; removing the user VM's sessions takes their consoles" {
	one_of_each
	sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed, console_port, console_password)
		values (1, 1, 'running', 1073741824, 1, 0, 0, 5901, 'abcdefgh')"
	sql "insert into consoles (session_id, username, instance, opened) values (1, 'u1', 'x/y/1/2', 5)"
	sql "insert into consoles (session_id, username, instance, opened, closed, reason, bytes_in, bytes_out)
		values (1, 'u1', 'x/y/1/2', 5, 6, 'browser', 10, 20)"
	# Closed without a reason, or with one not in the list: refused.
	run sql "update consoles set closed = 7 where id = 1"
	assert_failure
	run sql "update consoles set closed = 7, reason = 'bored' where id = 1"
	assert_failure
	sql "update sessions set state = 'ended', reason = 'logoff', changed = 9 where id = 1"
	assert_equal "$(sql "select id || ' ' || closed || ' ' || reason from consoles order by id")" "1 9 ended
2 6 browser"
	# The user VM removed (vm-copy --rm deletes its ended sessions so): its consoles go with them.
	# (the sqlite3 shell leaves foreign keys off; every VMDB handle of vdi-tools turns them on)
	if on_pg; then
		sql "delete from sessions where uservm_id = 1 and state = 'ended'"
	else
		sql "pragma foreign_keys = on; delete from sessions where uservm_id = 1 and state = 'ended'"
	fi
	assert_equal "$(sql "select count(*) from consoles")" 0
}

@test "an updated user VM that is ready again says so and is up to date; a replaced master is retired when its last user VM leaves, never removed" {
	one_of_each
	sql "insert into masters (name, state, os, pool, volume, format, virtual_size, sha256, source, mem, vcpus,
		disk, created) values ('m2', 'active', 'linux', 'vdi', 'master-m2', 'qcow2', 1, 'x', 'file:///m2', 1, 1, 1, 0)"
	sql "insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
		values ('u2', 'ready', 1, 'vdi', 'v2', 's2', 'u2', 1073741824, 1, 1, 0)"
	# Not replaced: a user VM leaving m does not retire it.
	sql "update uservms set master_id = 2 where username = 'u2'"
	assert_equal "$(sql "select state from masters where name = 'm'")" active
	sql "update uservms set master_id = 1 where username = 'u2'"
	sql "update masters set replaced_by = 2 where name = 'm'"
	# u1's update: claimed (creating, on m2, from m); m keeps serving u2.
	sql "update uservms set state = 'creating', updating_from = master_id, master_id = 2 where username = 'u1'"
	assert_equal "$(sql "select state from masters where name = 'm'")" active
	# Made: ready again, the update is over, in the same statement's transaction.
	sql "update uservms set state = 'ready' where username = 'u1'"
	assert_equal "$(sql "select coalesce(updating_from, 0) from uservms where username = 'u1'")" 0
	assert_equal "$(sql "select action || ' ' || detail from events where action = 'uservm-updated'")" \
		"uservm-updated from master m to m2"
	# A failed update says nothing and stays to be finished.
	sql "update uservms set state = 'failed', updating_from = 1 where username = 'u2'"
	assert_equal "$(sql "select count(*) from events where action = 'uservm-updated'")" 1
	# u2 removed: m has no user VM left, it is retired (not removed).
	sql "delete from uservms where username = 'u2'"
	assert_equal "$(sql "select name || ' ' || state from masters order by id" | paste -sd,)" "m retired,m2 active"
	# A home disk's size must be positive and its state one of two.
	run sql "insert into homes (username, state, pool, volume, size, created) values ('u1', 'ready', 'vdi', 'h', 0, 0)"
	assert_failure
	run sql "insert into homes (username, state, pool, volume, size, created) values ('u1', 'gone', 'vdi', 'h', 1, 0)"
	assert_failure
}

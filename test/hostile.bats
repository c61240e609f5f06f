#!/usr/bin/env bats
# Hostile input, planted files, races and faults, against a 2-host lab:
# names made of digits or control characters, files planted where vdi-tools
# writes, foreign SQLite files and config files, broken images, a vm-reap and
# a vm-start racing on one session, hosts removed or silent under running
# guests.  Every case gets one clear error line and its documented exit code,
# and loses nothing: after each test the VMDB, libvirt and the pool agree.

load helpers

setup_file() {
	lab_suite_start 2
}

teardown_file() {
	lab_suite_stop
}

setup() {
	lab_test_setup
}

teardown() {
	local h agree=0
	# Hosts a test stopped or broke come back first.
	for h in h1 h2; do
		kill -CONT "$(cat "$LAB/$h/libvirtd.pid")" 2>/dev/null || true
		virsh -q -c "$(lab_uri "$h")" pool-start vdi >/dev/null 2>&1 || true
	done
	assert_agree || agree=1
	lab_clean
	return $agree
}

# ---- users and sessions are never confused ----

@test "a user named with digits gets their own desktop, never the session with that number" {
	vm-copy -q --master m a b c 3 7
	run_vdi bash -c "vm-assign a b c | vm-start -q"
	run_vdi bash -c "vm-assign 3 | vm-start --show-password -o json"
	[ "$(jq -r '.[0].user' <<<"$output")" = 3 ]
	[ "$(jq -r '.[0].session' <<<"$output")" = 4 ]
	[ "$(jq -r '.[0].password' <<<"$output")" = "$(sql 'select display_password from sessions where id = 4')" ]
	mkdir -m 700 "$BATS_TEST_TMPDIR/vv"
	run_vdi vm-start --vv "$BATS_TEST_TMPDIR/vv" 7
	assert_output --regexp $'^7\th[12]\t5\t'
	grep -q "session 5 on" "$BATS_TEST_TMPDIR/vv/7.vv"
	[ ! -e "$BATS_TEST_TMPDIR/vv/c.vv" ]
	# Sessions are named only with --session.
	run_vdi vm-start --session 1
	assert_output --regexp $'^a\th[12]\t1\t'
	run_vdi 2 vm-start --session 1 a
}

# ---- files planted where vdi-tools writes ----

@test "a .vv planted in a shared folder (a symlink, another user's file, a FIFO) never gets the password" {
	vm-copy -q --master m alice bob carol dave
	local d="$BATS_TEST_TMPDIR/shared"
	mkdir -m 1777 "$d"
	echo secret-of-nobody >"$BATS_TEST_TMPDIR/target"
	ln -s "$BATS_TEST_TMPDIR/target" "$d/alice.vv"
	touch "$d/bob.vv" && chown nobody "$d/bob.vv"
	mkfifo "$d/carol.vv"
	VDI_TEST_TIMEOUT=60 run_vdi 5 vm-start --vv "$d" alice bob carol dave
	[ "$(grep -c 'error:' <<<"$output")" = 3 ]
	assert_output --partial "alice: $d/alice.vv exists and is not a regular file of ours (a symlink"
	assert_output --partial "bob: $d/bob.vv exists and is not a regular file of ours (a file"
	assert_output --partial "carol: $d/carol.vv exists and is not a regular file of ours (a FIFO"
	[ "$(cat "$BATS_TEST_TMPDIR/target")" = secret-of-nobody ]
	[ ! -s "$d/bob.vv" ] && [ -p "$d/carol.vv" ]
	[ "$(stat -c '%a %U' "$d/dave.vv")" = "600 root" ]
	grep -q '^password=' "$d/dave.vv"
	# The desktops run all the same; nothing else is left in the folder.
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 4 ]
	[ "$(ls -A "$d" | sort | paste -sd' ')" = "alice.vv bob.vv carol.vv dave.vv" ]
}

@test "the reaper's lock never follows a symlink" {
	sqlite_only "the lock is a file beside an SQLite VMDB"
	ln -s "$BATS_TEST_TMPDIR/created-by-reap" "$VDI_DB.reap.lock"
	run_vdi 1 vm-reap
	assert_output --partial "a symlink: refused"
	[ ! -e "$BATS_TEST_TMPDIR/created-by-reap" ]
}

@test "control characters in names never reach the terminal: one escaped error line" {
	run_vdi 2 vm-copy --master m $'ok\nvm-copy: error: forged line'
	[ "${#lines[@]}" = 1 ]
	assert_line --index 0 --partial "invalid user name 'ok\\nvm-copy: error: forged line'"
	run_vdi 2 vm-assign $'\e]0;pwned\a\e[31mred'
	[ "$(printf '%s' "$output" | tr -d -c '\033\007' | wc -c)" = 0 ]
	assert_output --partial '\x1b]0;pwned\x07\x1b[31mred'
	printf 'x\x1b[2Jy,linux\n' >"$BATS_TEST_TMPDIR/req.csv"
	run_vdi 2 vm-copy --csv <"$BATS_TEST_TMPDIR/req.csv"
	[ "$(printf '%s' "$output" | tr -d -c '\033' | wc -c)" = 0 ]
	assert_output --partial 'line 1: invalid user name'
}

@test "a seed is made in memory: a copy writes no temporary file, so none can be planted or left" {
	run_vdi vm-copy -q --master m alice
	[ -z "$(ls -d /tmp/vdi-seed.* 2>/dev/null)" ]
	# Its content is what the seed says, under its Rock Ridge and Joliet names.
	run isoinfo -i "$LAB/pool/user-alice-seed.iso" -R -x /meta-data
	assert_output --partial "instance-id: vdi-uservm-"
	run isoinfo -i "$LAB/pool/user-alice-seed.iso" -J -x /user-data
	assert_output --partial 'hostname: "alice"'
}

# ---- a race that hid a running desktop ----

@test "vm-reap --user and vm-start on one assigned session: whoever commits second backs off" {
	vm-copy -q --master m alice bob
	# bob runs on h2, so vm-reap must ask h2; alice is assigned to h1.
	vm-assign -q --host h2 bob && vm-start -q bob
	vm-assign -q --host h1 alice
	printf 'poll_timeout = 4s\n' >"$VDI_CONFIG"
	kill -STOP "$(cat "$LAB/h2/libvirtd.pid")"
	# vm-reap reads alice's session (assigned), then waits for h2 ...
	timeout 60 vm-reap --user alice >"$BATS_TEST_TMPDIR/reap.out" 2>&1 &
	local reaper=$!
	sleep 1
	# ... while vm-start claims and starts it on h1.
	run_vdi vm-start alice
	wait "$reaper" || true
	kill -CONT "$(cat "$LAB/h2/libvirtd.pid")"
	# The VMDB says what runs: alice's desktop is running, and h1 counts it.
	[ "$(sql "select s.state from sessions s join uservms u on u.id = s.uservm_id where u.username = 'alice'")" = running ]
	[ "$(running_domains h1)" = vdi-s2-alice ]
	[ "$(sql "select sessions from hosts where name = 'h1'")" = 1 ]
	# The other order: the reaper commits first, and vm-start then refuses.
	run_vdi vm-reap --user alice
	[ "$(running_domains h1)" = "" ]
	run_vdi 5 vm-start --session 2
	assert_output --partial "session 2 is ended"
}

@test "an update and a login race on one user VM: never a desktop on a disk being remade" {
	vm-copy -q --master m alice
	vm-master -q add m2 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
	local r from to upd st
	for r in 1 2 3 4 5 6; do
		from=m to=m2
		[ $((r % 2)) = 1 ] || { from=m2 to=m; }
		vm-master -q update "$from" "$to"
		vm-copy --update alice >"$BATS_TEST_TMPDIR/upd.out" 2>&1 &
		upd=$!
		vm-start -q alice >"$BATS_TEST_TMPDIR/start.out" 2>&1 || true
		wait "$upd" && st=0 || st=$?
		# One of the two won: an update refused for the session, or a start refused for the update.
		if [ "$(sql "select count(*) from sessions where state = 'running'")" = 1 ]; then
			# The desktop runs on a disk nobody remade under it: still the old master's, ready.
			assert_equal "$(sql "select u.state || ' ' || m.name from uservms u join masters m on m.id = u.master_id")" \
				"ready $([ "$st" = 0 ] && echo "$to" || echo "$from")"
			[ "$st" = 0 ] || grep -q "it has a session" "$BATS_TEST_TMPDIR/upd.out"
			assert_agree
			run_vdi vm-reap --session "$(sql "select id from sessions where state = 'running'")"
			run_vdi vm-copy --update --all
		else
			grep -q "being updated\|waits for its update" "$BATS_TEST_TMPDIR/start.out"
			assert_equal "$st" 0
		fi
		assert_equal "$(sql "select u.state || ' ' || m.name from uservms u join masters m on m.id = u.master_id")" "ready $to"
	done
}

# ---- disks deleted under running guests ----

@test "vm-hosts rm --force destroys the host's desktops first; an unreachable host is refused (75), its sessions kept" {
	vm-copy -q --master m u1 u2 u3
	run_vdi bash -c "vm-assign --host h2 u1 u2 | vm-start -q"
	kill -STOP "$(cat "$LAB/h2/libvirtd.pid")"
	printf 'poll_timeout = 2s\n' >"$VDI_CONFIG"
	run_vdi 75 vm-hosts rm --force h2
	assert_output --partial "cannot be reached"
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 2 ]
	# The orphan audit deletes no overlay while a host of the pool is silent.
	run_vdi 75 vm-reap --orphans
	[ -e "$LAB/pool/s1-u1.qcow2" ] && [ -e "$LAB/pool/s2-u2.qcow2" ]
	kill -CONT "$(cat "$LAB/h2/libvirtd.pid")"
	run_vdi vm-hosts rm --force h2
	[ "$(running_domains h2)" = "" ]
	[ ! -e "$LAB/pool/s1-u1.qcow2" ] && [ ! -e "$LAB/pool/s2-u2.qcow2" ]
	[ "$(sql_list , "select state || ' ' || reason from sessions order by id")" = "ended admin,ended admin" ]
	[ "$(sql "select count(*) from hosts where name = 'h2'")" = 0 ]
}

@test "vm-copy --rm --force ends the session for real before it deletes the disk" {
	vm-copy -q --master m alice
	vm-start -q alice
	run_vdi 5 vm-copy --rm alice
	run_vdi vm-copy --rm --force alice
	[ "$(running_domains h1)$(running_domains h2)" = "" ]
	[ ! -e "$LAB/pool/s1-alice.qcow2" ] && [ ! -e "$LAB/pool/user-alice.qcow2" ]
}

# ---- files that are not ours ----

@test "a foreign SQLite file is refused by every program and left untouched" {
	local f="$BATS_TEST_TMPDIR/contacts.db" g="$BATS_TEST_TMPDIR/hosts.db" sum
	sqlite3 "$f" "create table contacts (name text); insert into contacts values ('ann')"
	sqlite3 "$g" "create table hosts (id integer primary key, name text)"
	sum=$(file_sum "$f")
	VDI_DB=$f run_vdi 1 vm-ls
	assert_output "vm-ls: error: $f is not a VMDB: an SQLite file of another program (application_id 0, 1 schema objects); refused, the file was not changed"
	VDI_DB=$g run_vdi 1 vm-hosts list
	VDI_DB=$g run_vdi 1 vm-assign -n alice
	[ "$(file_sum "$f")" = "$sum" ]
	[ ! -e "$f-wal" ] && [ "$(sqlite3 "$g" .tables)" = hosts ]
	# A VMDB says it is one.
	on_pg || [ "$(sql 'pragma application_id')" = 1447315761 ]
}

@test "PostgreSQL: another application's database, a bad URI, a wrong password, a server gone: one line each, nothing changed" {
	on_pg || skip "PostgreSQL only"
	local other="host=$VDI_TEST_PG user=postgres dbname=other_$RANDOM" sum
	createdb -h "$VDI_TEST_PG" -U postgres "${other##*dbname=}"
	psql -X -q -d "$other" -c "create table contacts (name text); insert into contacts values ('ann')"
	sum=$(pg_sum "$other")
	VDI_DB=$other run_vdi 1 vm-ls
	assert_output "vm-ls: error: $other is not a VMDB: a database of another application (it has tables but no vdi_meta marker); refused, nothing was changed"
	VDI_DB=$other run_vdi 1 vm-assign -n alice
	[ "$(pg_sum "$other")" = "$sum" ]
	# A URI libpq cannot read: a usage error (2), one line.
	VDI_DB='postgresql://[::1/x' run_vdi 2 vm-ls
	assert_output --regexp '^vm-ls: error: VMDB postgresql://\[::1/x: not a PostgreSQL connection string: '
	[ "${#lines[@]}" = 1 ]
	# A password that is wrong (the server asks for one from this role): 2, and the password is not shown.
	psql -X -q -d "$VDI_DB" -c "create role ann login password 'right'"
	sed -i 's/^local .*all .*all .*trust$/local all ann scram-sha-256\n&/' "$VDI_TEST_PG/data/pg_hba.conf"
	psql -X -q -d "$VDI_DB" -c "select pg_reload_conf()" >/dev/null
	VDI_DB="postgresql://ann:wrong-pw@/postgres?host=$VDI_TEST_PG" run_vdi 2 vm-ls
	sed -i '/^local all ann scram-sha-256$/d' "$VDI_TEST_PG/data/pg_hba.conf"
	psql -X -q -d "$VDI_DB" -c "select pg_reload_conf()" >/dev/null
	assert_output --partial 'password authentication failed'
	assert_output --partial "postgresql://ann:***@/postgres"
	refute_output --partial wrong-pw
	[ "${#lines[@]}" = 1 ]
	# No server there: temporary (75), try again.
	VDI_DB="host=$BATS_TEST_TMPDIR user=postgres dbname=x" run_vdi 75 vm-ls
	assert_output --regexp "^vm-ls: error: cannot open VMDB host=$BATS_TEST_TMPDIR user=postgres dbname=x: .*; try again$"
}

@test "config files: a device, random bytes, a huge line and values out of range each name file, line and key" {
	VDI_CONFIG=/dev/zero run_vdi 2 vm-ls
	assert_output "vm-ls: error: config file: /dev/zero is not a regular file"
	head -c 4096 /dev/urandom | tr -d '\n' >"$BATS_TEST_TMPDIR/random.conf"
	VDI_CONFIG=$BATS_TEST_TMPDIR/random.conf run_vdi 2 vm-ls
	assert_output --regexp "^vm-ls: error: $BATS_TEST_TMPDIR/random.conf(:1: (control character|line longer|expected)|: not a config file)"
	printf '# ok\npoll_parallel = 0\n' >"$VDI_CONFIG"
	run_vdi 2 vm-ls
	assert_output "vm-ls: error: $VDI_CONFIG:2: poll_parallel: invalid number '0': must be from 1 to 1024"
	head -c 2000000 /dev/zero | tr '\0' '#' >"$VDI_CONFIG"
	run_vdi 2 vm-ls
	assert_output --partial "is too large"
}

# ---- images ----

@test "broken images are refused before they are registered: cut qcow2, text, devices, folders, other schemes" {
	qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/full.qcow2" 64M
	qemu-io -f qcow2 -c 'write -P 7 0 8M' "$BATS_TEST_TMPDIR/full.qcow2" >/dev/null
	local size
	size=$(stat -c %s "$BATS_TEST_TMPDIR/full.qcow2")
	head -c $((size / 2)) "$BATS_TEST_TMPDIR/full.qcow2" >"$BATS_TEST_TMPDIR/half.qcow2"
	head -c 65536 "$BATS_TEST_TMPDIR/full.qcow2" >"$BATS_TEST_TMPDIR/head.qcow2"
	run_vdi 1 vm-master add half --image "$BATS_TEST_TMPDIR/half.qcow2"
	assert_output --partial "qcow2 image is incomplete"
	run_vdi 1 vm-master add head --image "$BATS_TEST_TMPDIR/head.qcow2"
	assert_output --partial "qcow2 image is incomplete"
	run_vdi vm-master add full --image "$BATS_TEST_TMPDIR/full.qcow2" -q
	python3 -c 'print(("Grüße, 世界 — " * 60)[:1000])' >"$BATS_TEST_TMPDIR/notes.txt"
	run_vdi 1 vm-master add text --image "$BATS_TEST_TMPDIR/notes.txt"
	assert_output --partial "starts with text"
	run_vdi 2 vm-master add zero --image /dev/zero
	assert_output --partial "not a regular file"
	run_vdi 2 vm-master add zero --image file:///dev/zero
	run_vdi 2 vm-master add dir --image "$BATS_TEST_TMPDIR"
	assert_output "vm-master: error: dir: image $BATS_TEST_TMPDIR is a folder"
	run_vdi 2 vm-master add ftp --image ftp:///etc/passwd
	assert_output --partial "only http, https and file URLs"
	run sql "select name from masters order by id"
	assert_output $'m\nfull'
	[ "$(ls "$LAB/pool" | grep -c '^master-')" = 2 ]
}

# ---- sizes, dates, CSV and lists ----

@test "sizes are exact or refused, dates must exist" {
	run_vdi 2 vm-copy --master m --disk 1.0000000001G alice
	assert_output --partial "not a whole number of bytes"
	run_vdi 2 vm-copy --master m --disk 0.0000000000000000000001G alice
	run_vdi vm-copy -n --master m --disk 1.0009765625G alice
	assert_output --partial "would copy master m for alice"
	run_vdi 2 vm-copy --master m --expires 2099-02-30 alice
	assert_output --partial "'2099-02-30' is not a date that exists"
	run_vdi 2 vm-copy --master m --expires 2099-13-01 alice
	run_vdi vm-copy -q --master m --expires 2099-02-28T23:59Z alice
	[ "$(sql "select expires from uservms where username = 'alice'")" = 4076006340 ]
}

@test "CSV as a spreadsheet writes it: BOM, CRLF, quoted header and fields; lists with CRLF" {
	printf '\xef\xbb\xbf"user","os","apps","mem"\r\n"alice",linux,,"128M"\r\n\r\nbob,"linux","",\r\n"c,d",linux\r\n"e""f",linux\r\n' \
		>"$BATS_TEST_TMPDIR/req.csv"
	run_vdi 2 vm-copy --csv -q <"$BATS_TEST_TMPDIR/req.csv"
	[ "$(grep -c error: <<<"$output")" = 2 ]
	assert_line --index 0 --partial "line 5: invalid user name 'c,d'"
	assert_line --index 1 --partial "line 6: invalid user name 'e\"f'"
	[ "$(sql_list , "select username || ':' || mem from uservms order by username")" = "alice:134217728,bob:67108864" ]
	run_vdi bash -c "printf 'alice\r\n\r\n  bob\t# x\r\n' | vm-assign -n"
	assert_line --index 0 --regexp $'^alice\th[12]\t$'
	assert_line --index 1 --regexp $'^bob\th[12]\t$'
}

# ---- a full or read-only pool; a host that fails ----

@test "the only host fails: exit 1 with the host's reason, said once; nothing is left" {
	vm-copy -q --master m alice
	vm-hosts -q drain h2
	virsh -q -c "$(lab_uri h1)" pool-destroy vdi >/dev/null
	run_vdi 1 vm-start alice
	[ "${#lines[@]}" = 1 ]
	assert_output --regexp "^vm-start: error: alice: no other host fits; last: session 1 on h1: .*(not active|inactive)"
	[ "$(sql "select state || ' ' || reason from sessions")" = "ended failed" ]
	virsh -q -c "$(lab_uri h1)" pool-start vdi >/dev/null
	vm-hosts -q undrain h2
}

@test "a volume libvirt cannot delete says why; a domain gone meanwhile is no failure" {
	vm-copy -q --master m alice bob
	vm-start -q alice bob
	# alice's overlay replaced behind our back by a folder that is not empty.
	rm "$LAB/pool/s1-alice.qcow2"
	mkdir -p "$LAB/pool/s1-alice.qcow2/x"
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null
	run_vdi 1 vm-reap --user alice
	refute_output --partial "no error"
	assert_output --regexp "deleting volume: .*(Directory not empty|directory)"
	[ "$(sql 'select state from sessions where id = 1')" = stopping ]
	rm -rf "$LAB/pool/s1-alice.qcow2"
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null
	run_vdi vm-reap --user alice
	# bob's domain destroyed by someone else just before ours: ended, no error.
	virsh -q -c "$(lab_uri h2)" destroy vdi-s2-bob >/dev/null
	run_vdi vm-reap --user bob
	refute_output --partial error
	[ "$(sql_list , "select state from sessions order by id")" = "ended,ended" ]
}

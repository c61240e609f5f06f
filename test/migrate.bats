#!/usr/bin/env bats
# migrate.bats - hosts in motion: vm-migrate moves running desktops live
# between two real lab hosts (their own host_uuid and migration ports),
# kill -9 at each named step is settled by vm-reap, vm-hosts drain and
# maintenance --migrate empty a host, vm-rebalance levels the hosts.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
	guest_image || return 1
	lab_suite_start 2
}

teardown_file() {
	lab_suite_stop
}

setup() {
	common_setup
	W=$BATS_TEST_TMPDIR
	# TCG (this machine kind's /dev/kvm cannot run a guest); the lab's pool is one local
	# folder both hosts see, which libvirt cannot tell from unshared storage.
	printf 'domain_type = qemu\nmigrate_unsafe = yes\n' >"$VDI_CONFIG"
	add_lab_hosts --network vdi --migration-uri tcp://127.0.0.1
	vm-master -q add guest --image "$GUEST" --os linux --mem 192M --prepare none
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
}

teardown() {
	local rc=0
	dump_logs_on_failure "$W/watch.log" "$W/viewer.log"
	stop_pidfile "$W/viewer.pid"
	stop_pidfile "$W/xvfb.pid"
	stop_pidfile "$W/watch.pid"
	assert_agree || rc=1
	lab_clean
	return $rc
}

# host_of USER: the host the VMDB names for USER's live session.
host_of() {
	sql "select h.name from sessions s join hosts h on h.id = s.host_id join uservms u on u.id = s.uservm_id
		where u.username = '$1' and s.state <> 'ended'"
}

# ready_lines DOMAIN: how often the guest said it booted, on every host's console of DOMAIN.
ready_lines() {
	cat "$LAB"/h*/log/qemu/"$1".console.log 2>/dev/null | grep -c 'vdi-guest: ready' || true
}

@test "a running desktop moves live and back: no reboot, the VMDB and both hosts agree, its capacity follows it" {
	vm-copy -q --master guest alice
	run_vdi vm-assign --host h1 alice
	run_vdi vm-start alice
	wait_console alice 'vdi-guest: ready' 120
	dom=$(sql "select domain from sessions where state = 'running'")
	# Without migrate_unsafe, libvirt refuses the lab's plain shared folder: the error says which setting.
	printf 'domain_type = qemu\n' >"$VDI_CONFIG"
	run_vdi 1 vm-migrate alice
	assert_output --partial "(on shared storage libvirt does not know, such as a plain shared folder: migrate_unsafe = yes in vdi.conf)"
	assert_equal "$(host_of alice) $(sql "select state from sessions")" "h1 running"
	printf 'domain_type = qemu\nmigrate_unsafe = yes\n' >"$VDI_CONFIG"
	run_vdi vm-migrate -o json alice
	assert_equal "$(jq -r '.[0] | .user + " " + .from + " " + .to' <<<"$output")" "alice h1 h2"
	[ "$(jq -r '.[0].seconds | tonumber > 0' <<<"$output")" = true ]
	port=$(jq -r '.[0].port' <<<"$output")
	assert_equal "$(host_of alice) $(sql "select state from sessions")" "h2 running"
	assert_equal "$(running_domains h1)" ""
	assert_equal "$(running_domains h2)" "$dom"
	# Still transient there: nothing of it is defined on either host.
	virsh -q -c "$(lab_uri h2)" dominfo "$dom" | grep -qE '^Persistent: +no'
	assert_equal "$(virsh -q -c "$(lab_uri h1)" list --all --name | grep -c . || true)" 0
	# The port the VMDB gives viewers is the one QEMU listens on there (h2's display ports), and so is
	# the browser console's (its VNC display, which vm-console connects to).
	virsh -q -c "$(lab_uri h2)" domdisplay --type spice "$dom" | grep -q ":$port"
	vnc=$(sql "select console_port from sessions")
	virsh -q -c "$(lab_uri h2)" dumpxml "$dom" | grep -q "<graphics type='vnc' port='$vnc'"
	[ "$port" -ge 6000 ]
	assert_equal "$(sql "select name || ' ' || sessions || ' ' || mem_used from hosts order by name")" \
		$'h1 0 0\nh2 1 201326592'
	assert_agree
	# It did not boot again: one "ready" in all, and h2's console of it has none.
	assert_equal "$(ready_lines "$dom")" 1
	! grep -q 'vdi-guest: ready' "$LAB/h2/log/qemu/$dom.console.log"
	# Back again, where the scheduler sends it (h1: the only other host).
	run_vdi vm-migrate alice
	assert_equal "$(host_of alice)" h1
	assert_equal "$(running_domains h2)" ""
	# Still the same running kernel: its power button is heard, the console says so, no new boot.
	virsh -q -c "$(lab_uri h1)" shutdown "$dom" >/dev/null
	wait_console alice 'vdi-guest: stopping' 60
	wait_domain_gone h1 "$dom"
	run_vdi vm-reap
	assert_equal "$(sql "select state || ' ' || reason from sessions")" "ended poweroff"
	assert_equal "$(ready_lines "$dom")" 1
	assert_equal "$(sql_list ' ' "select action from events where action like 'session-migrate%' order by id")" \
		"session-migrate-begin session-migrate-undone session-migrate-begin session-migrate session-migrate-begin session-migrate"
	assert_equal "$(sql "select sum(sessions) || ' ' || sum(mem_used) from hosts")" "0 0"
}

@test "a connected remote-viewer follows the desktop (SPICE seamless migration); vm-watch sees no gap that ends it" {
	printf 'disconnect_timeout = 4s\nconnect_timeout = 0\n' >>"$VDI_CONFIG"
	vm-copy -q --master guest alice
	watch_start
	run_vdi vm-assign --host h1 alice
	mkdir "$W/vv"
	run_vdi vm-start --vv "$W/vv" alice
	dom=$(sql "select domain from sessions where state = 'running'")
	viewer "$W/vv/alice.vv"
	wait_sql "select case when connected_since is not null and disconnected_since is null then 1 else 0 end from sessions" 1 30
	run_vdi vm-migrate -o json --to h2 alice
	port=$(jq -r '.[0].port' <<<"$output")
	assert_equal "$(host_of alice)" h2
	# The same viewer process, connected now to h2's QEMU (QEMU told it where to go; whether
	# SPICE carried its session over or it reconnected, the user never saw the desktop go).
	kill -0 "$(cat "$W/viewer.pid")"
	run virsh -q -c "$(lab_uri h2)" qemu-monitor-command "$dom" '{"execute":"query-spice"}'
	assert_equal "$(jq '.return.channels | length > 0' <<<"$output")" true
	ss -Htnp state established "( dport = :$port )" | grep -q "pid=$(cat "$W/viewer.pid"),"
	run_vdi '?' virsh -q -c "$(lab_uri h1)" domstate "$dom"
	[ "$status" -ne 0 ]
	assert_equal "$(sql "select case when connected_since is not null and disconnected_since is null then 1 else 0 end from sessions")" 1
	# Past disconnect_timeout, vm-reap still finds it connected: the session runs on.
	VDI_TEST_CLOCK=5 run_vdi vm-reap
	assert_equal "$(sql "select state from sessions")" running
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].viewer' <<<"$output")" connected
	# The viewer closes on h2: vm-watch, following h2 now, records it.
	stop_pidfile "$W/viewer.pid"
	wait_sql "select case when disconnected_since is not null then 1 else 0 end from sessions" 1 30
}

@test "kill -9 of vm-migrate at each named step: vm-reap settles it, nothing runs twice, nothing is lost, no capacity leaks" {
	base=$(cat "$VDI_CONFIG")
	vm-copy -q --master guest alice
	run_vdi vm-assign --host h1 alice
	run_vdi vm-start alice
	wait_console alice 'vdi-guest: ready' 120
	dom=$(sql "select domain from sessions where state = 'running'")
	ov=$(sql "select overlay from sessions where state = 'running'")
	for step in migrate-claimed migrate-running migrate-done; do
		# During the job: a slow migration (1 MiB/s), so the kill lands while it runs.
		printf '%s\n%s\n' "$base" "$([ $step = migrate-running ] && echo 'migrate_bandwidth = 1')" >"$VDI_CONFIG"
		from=$(host_of alice)
		VDI_TEST_STOP_AT=$step run_vdi 137 vm-migrate alice
		assert_equal "$(sql "select state from sessions")" migrating
		# Its room is held on both hosts until it is settled.
		assert_equal "$(sql "select sum(sessions) from hosts")" 2
		# Nobody starts it meanwhile: it is somewhere between two hosts.
		run_vdi 75 vm-start alice
		assert_output --partial "is moving from $from to"
		for ((i = 0; i < 60; i++)); do
			run_vdi '?' vm-reap
			[ "$(sql "select state from sessions")" = running ] && break
			sleep 1
		done
		assert_equal "$(sql "select state from sessions")" running
		to=$(host_of alice)
		case $step in
		migrate-claimed | migrate-running) assert_equal "$to" "$from" ;;
		migrate-done) [ "$to" != "$from" ] ;;
		esac
		# Exactly one domain, where the VMDB says; the overlay is there; the counters hold one session.
		assert_equal "$(running_domains "$to")" "$dom"
		assert_equal "$(running_domains "$([ "$to" = h1 ] && echo h2 || echo h1)")" ""
		[ -e "$LAB/pool/$ov" ]
		assert_equal "$(sql "select sum(sessions) || ' ' || sum(mem_used) from hosts")" "1 201326592"
		assert_agree
		sql "select detail from events where action like 'session-migrate%' order by id desc limit 1" |
			grep -q "(settled: the domain was"
	done
	# Never rebooted through it all.
	assert_equal "$(ready_lines "$dom")" 1
	# migrate_timeout aborts a move that takes too long; the desktop stays, and says why.
	printf '%s\nmigrate_bandwidth = 1\nmigrate_timeout = 2s\n' "$base" >"$VDI_CONFIG"
	from=$(host_of alice)
	run_vdi 1 vm-migrate alice
	assert_output --partial "took longer than migrate_timeout (2 s): aborted"
	assert_equal "$(host_of alice) $(sql "select state from sessions")" "$from running"
	assert_equal "$(running_domains "$from")" "$dom"
	assert_equal "$(sql "select sum(sessions) from hosts")" 1
}

@test "vm-hosts drain --migrate empties a host of three sessions; maintenance refuses while sessions run, --migrate moves them first" {
	vm-copy -q --master m u1 u2 u3
	run_vdi vm-assign --host h1 u1 u2 u3
	run_vdi vm-start u1 u2 u3
	run_vdi vm-hosts drain -n --migrate -o json h1
	assert_equal "$(jq -r '[.[].to] | unique | join(" ")' <<<"$output")" h2
	assert_equal "$(sql "select admin from hosts where name = 'h1'")" active
	run_vdi vm-hosts drain --migrate -o json h1
	assert_equal "$(jq -r '[.[] | .user + ":" + .from + ">" + .to] | join(" ")' <<<"$output")" \
		"u1:h1>h2 u2:h1>h2 u3:h1>h2"
	assert_equal "$(sql "select admin || ' ' || sessions from hosts where name = 'h1'")" "draining 0"
	assert_equal "$(running_domains h1)" ""
	assert_equal "$(running_domains h2 | wc -l)" 3
	assert_agree
	# A session that cannot move stays, and says why: h2 refuses it (no room), h1 keeps it.
	run_vdi vm-hosts undrain h1
	run_vdi vm-migrate --to h1 u1
	vm-hosts -q set h2 --max-sessions 2
	run_vdi 4 vm-hosts drain --migrate h1
	assert_output --partial "vm-hosts: warning: session 1 of u1: no host: 1 full (sessions), 1 where it runs"
	assert_output --partial "h1: 1 session stays there"
	assert_equal "$(host_of u1)" h1
	# Maintenance refuses while it runs there ...
	run_vdi 5 vm-hosts maintenance h1
	assert_output --partial "host 'h1' has 1 session that is not ended (--migrate moves them first"
	assert_equal "$(sql "select admin from hosts where name = 'h1'")" draining
	# ... and with --migrate moves it first.
	vm-hosts -q set h2 --max-sessions none
	run_vdi vm-hosts maintenance --migrate h1
	assert_equal "$(sql "select admin || ' ' || sessions from hosts where name = 'h1'")" "maintenance 0"
	assert_equal "$(host_of u1)" h2
	run_vdi 2 vm-hosts maintenance --migrate --force h1
	run_vdi 2 vm-hosts undrain --migrate h1
}

@test "vm-rebalance: -n shows the plan and the spread; it levels the hosts, then leaves them be (no ping-pong)" {
	vm-copy -q --master m u1 u2 u3 u4 u5
	run_vdi vm-assign --host h1 u1 u2 u3 u4 u5
	run_vdi vm-start u1 u2 u3 u4 u5
	run_vdi vm-hosts poll
	# Under a threshold of 5 sessions nothing moves, and the output says why, with the setting to change.
	run_vdi vm-rebalance -n -p least-sessions --threshold 5
	assert_output --partial "sessions: spread 2.5 -> 2.5 with 0 moves; balanced: the fullest host is 2.5 sessions above the mean, within the threshold of 5.0 (--threshold, or rebalance_threshold_sessions in vdi.conf)"
	# The defaults level an obvious imbalance (5/0): the plan, then every host's figure with --explain.
	run_vdi vm-rebalance -n -p least-sessions -o json
	assert_output --partial "sessions: spread 2.5 -> 0.5 with 2 moves"
	assert_equal "$(grep -v '^vm-rebalance: ' <<<"$output" | jq -r '[.[] | .from + ">" + .to] | join(" ")')" "h1>h2 h1>h2"
	run_vdi vm-rebalance -p least-sessions --explain -o json
	assert_equal "$(grep -v '^vm-rebalance: ' <<<"$output" | jq -r '.[] | select(.host == "h1") | "\(.counted) \(.before) \(.after)"')" "yes 5 3"
	assert_equal "$(sql_list ' ' "select sessions from hosts order by name")" "5 0"
	run_vdi vm-rebalance -p least-sessions --threshold 1 --max-moves 1
	assert_equal "$(sql_list ' ' "select sessions from hosts order by name")" "4 1"
	run_vdi vm-rebalance -p least-sessions --threshold 1
	assert_equal "$(sql_list ' ' "select sessions from hosts order by name")" "3 2"
	assert_agree
	# Balanced as it can be: a third run plans nothing, and never moves one back.
	run_vdi vm-rebalance -n -p least-sessions --threshold 0
	assert_output --partial "with 0 moves; no move lowers the spread further"
	# A session moved within rebalance_rest (30m by default) stays where it went: the two just
	# moved are sent back by hand, and the plan to level again takes two that never moved.
	run_vdi vm-migrate --to h1 $(sql "select u.username from sessions s join uservms u on u.id = s.uservm_id
		where s.host_id = 2 and s.state = 'running'")
	run_vdi vm-rebalance -n -p least-sessions --threshold 0 -o json
	planned=$(grep -v '^vm-rebalance: ' <<<"$output" | jq -r '.[].session')
	assert_equal "$(wc -w <<<"$planned")" 2
	for id in $planned; do
		assert_equal "$(sql "select case when migrated is null then 1 else 0 end from sessions where id = $id")" 1
	done
	# A move that fails is recorded and not tried again in the same run; the desktop stays.
	vm-hosts -q set h2 --network nope
	mark=$(sql "select max(id) from events")
	run_vdi 1 vm-rebalance -p least-sessions --threshold 0
	assert_output --partial "migrating: "
	assert_equal "$(sql "select count(*) || ' ' || count(distinct object) from events
		where id > $mark and action = 'session-migrate-begin'")" "2 2"
	assert_equal "$(sql "select count(*) from events where id > $mark and action = 'session-migrate-undone'")" 2
	assert_equal "$(sql_list ' ' "select sessions from hosts order by name")" "5 0"
	run_vdi 2 vm-rebalance -p pack
	assert_output --partial "policy pack fills hosts on purpose"
}

@test "two vm-rebalance at once: the second waits for the first, then finds the hosts level; no desktop moves twice" {
	vm-copy -q --master m u1 u2 u3 u4 u5
	run_vdi vm-assign --host h1 u1 u2 u3 u4 u5
	run_vdi vm-start u1 u2 u3 u4 u5
	run_vdi vm-hosts poll
	mark=$(sql "select coalesce(max(id), 0) from events")
	vm-rebalance -p least-sessions --threshold 1 >"$BATS_TEST_TMPDIR/r1.out" 2>&1 &
	local r1=$! rc1=0 rc2=0
	vm-rebalance -p least-sessions --threshold 1 >"$BATS_TEST_TMPDIR/r2.out" 2>&1 &
	local r2=$!
	wait "$r1" || rc1=$?
	wait "$r2" || rc2=$?
	cat "$BATS_TEST_TMPDIR/r1.out" "$BATS_TEST_TMPDIR/r2.out"
	assert_equal "$rc1 $rc2" "0 0"
	cat "$BATS_TEST_TMPDIR/r1.out" "$BATS_TEST_TMPDIR/r2.out" | grep -q "another vm-rebalance is running; waiting"
	assert_equal "$(sql_list ' ' "select sessions from hosts order by name")" "3 2"
	assert_equal "$(sql "select count(*) || ' ' || count(distinct object) from events
		where id > $mark and action = 'session-migrate-begin'")" "2 2"
	assert_agree
}

@test "vm-migrate refuses what it cannot do, in one line with its exit code, and changes nothing" {
	vm-copy -q --master m u1 u2
	run_vdi vm-assign --host h1 u1 u2
	run_vdi vm-start u1
	before=$(sql_list , "select id || state || host_id || coalesce(migrate_to || '', '-') from sessions order by id")
	run_vdi 3 vm-migrate nobody
	assert_output "vm-migrate: error: nobody: user 'nobody' has no session"
	run_vdi 5 vm-migrate u2
	assert_output --partial "session 2 is assigned; only a running desktop moves"
	run_vdi 5 vm-migrate --to h1 u1
	assert_output --partial "session 1 runs on h1 already"
	run_vdi 3 vm-migrate --to h9 u1
	assert_output --partial "no host 'h9'"
	vm-hosts -q drain h2
	run_vdi 4 vm-migrate u1
	assert_output --partial "1 draining"
	run_vdi 4 vm-migrate --to h2 u1
	assert_output --partial "host h2 fails filter 'draining'"
	vm-hosts -q undrain h2
	run_vdi 2 vm-migrate --force u1
	assert_output --partial "--force needs --to HOST"
	run_vdi 2 vm-migrate --session 12x
	run_vdi 2 vm-migrate --to $'h\x01' u1
	run_vdi 2 vm-migrate $'<b>u1</b>'
	run_vdi 2 vm-hosts set h2 --migration-uri 'http://127.0.0.1'
	run_vdi 2 vm-hosts set h2 --migration-uri 'tcp://127.0.0.1:99999'
	assert_equal "$(sql_list , "select id || state || host_id || coalesce(migrate_to || '', '-') from sessions order by id")" \
		"$before"
	# Two movers race on one session: the second is refused while the first moves it, and
	# vm-reap leaves a move whose mover lives alone.
	printf 'migrate_bandwidth = 1\n' >>"$VDI_CONFIG"
	vm-migrate -q u1 </dev/null >"$W/first.out" 2>&1 3>&- &
	first=$!
	wait_sql "select state from sessions where id = 1" migrating
	run_vdi 5 vm-migrate u1
	assert_output --partial "session 1 is being moved to h2 by process"
	run_vdi vm-reap
	assert_equal "$(sql "select state from sessions where id = 1")" migrating
	wait "$first"
	assert_equal "$(host_of u1) $(sql "select state from sessions where id = 1")" "h2 running"
	sed -i '/migrate_bandwidth/d' "$VDI_CONFIG"
	run_vdi vm-migrate --to h1 u1
	# Left half-moved, with its source host silent: the copy running on the destination wins.
	VDI_TEST_STOP_AT=migrate-done run_vdi 137 vm-migrate --to h2 u1
	uri=$(sql "select uri from hosts where name = 'h1'")
	sql "update hosts set uri = 'qemu+unix:///system?socket=$W/silent' where name = 'h1'"
	run_vdi '?' vm-reap
	assert_equal "$(host_of u1) $(sql "select state from sessions where id = 1")" "h2 running"
	sql "select detail from events order by id desc limit 1" | grep -q "unknown (no answer) on h1, running on h2"
	sql "update hosts set uri = '$uri' where name = 'h1'"
	run_vdi vm-migrate --to h1 u1
	# A destination that does not take the migration (its sessions' network is not there):
	# it fails, the desktop stays where it runs.
	vm-hosts -q set h2 --network nope
	run_vdi 1 vm-migrate u1
	assert_output --regexp '^vm-migrate: error: session 1 of u1: migrating: '
	assert_equal "$(host_of u1) $(sql "select state from sessions where id = 1")" "h1 running"
	assert_equal "$(sql "select sum(sessions) from hosts")" 2
	assert_equal "$(sql "select action from events order by id desc limit 1")" session-migrate-undone
}

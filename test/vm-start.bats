#!/usr/bin/env bats
# vm-start against a 3-host lab: real transient domains with SPICE.

load helpers

setup_file() {
	lab_suite_start 3
}

teardown_file() {
	lab_suite_stop
}

setup() {
	lab_test_setup
}

teardown() {
	# Whatever the test did, the VMDB, libvirt and the pool must agree.
	local agree=0
	assert_agree || agree=1
	lab_clean
	return $agree
}

@test "vm-assign | vm-start: each desktop runs as a transient domain with our metadata and SPICE" {
	vm-copy -q --master m alice bob
	mkdir "$BATS_TEST_TMPDIR/vv"
	run_vdi bash -c "vm-assign alice bob | vm-start --vv '$BATS_TEST_TMPDIR/vv'"
	assert_line --index 0 --regexp $'^alice\th1\t1\tspice://127\\.0\\.0\\.1:[0-9]+$'
	assert_line --index 1 --regexp $'^bob\th2\t2\tspice://127\\.0\\.0\\.1:[0-9]+$'
	[ "$(running_domains h1)" = vdi-s1-alice ]
	[ "$(running_domains h2)" = vdi-s2-bob ]
	run virsh -q -c "$(lab_uri h1)" dominfo vdi-s1-alice
	assert_output --regexp "Persistent: +no"
	run virsh -q -c "$(lab_uri h1)" metadata vdi-s1-alice http://vdi-tools.org/xmlns/session/1
	assert_output --partial 'id="1"'
	assert_output --partial 'user="alice"'
	run qemu-img info -U --backing-chain "$LAB/pool/s1-alice.qcow2"
	assert_output --partial "backing file: $LAB/pool/user-alice.qcow2"
	assert_output --partial "backing file: $LAB/pool/master-m"
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/vv/alice.vv")" = 600 ]
	grep -q '^type=spice$' "$BATS_TEST_TMPDIR/vv/alice.vv"
	[ "$(sql "select state from sessions where id = 1")" = running ]
	run_vdi vm-hosts poll -o json
	assert_output --partial '"domains_ours":1'
}

@test "the password is fresh per session, in the domain, and shown only when asked" {
	vm-copy -q --master m alice bob
	run_vdi vm-start alice
	# Not vacuous: the line is there, with four fields and no fifth.
	assert_output --regexp $'^alice\th1\t1\tspice://127\\.0\\.0\\.1:[0-9]+$'
	refute_output --partial "$(sql 'select display_password from sessions where id = 1')"
	run_vdi vm-start --show-password alice bob -o json
	local pa pb
	pa=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["password"])' "$output")
	pb=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[1]["password"])' "$output")
	[ ${#pa} -eq 24 ] && [ "$pa" != "$pb" ]
	run virsh -q -c "$(lab_uri h1)" dumpxml --security-info vdi-s1-alice
	assert_output --partial "passwd='$pa'"
}

@test "a user without a session is assigned first; a running session is printed again and nothing changes" {
	vm-copy -q --master m alice
	run_vdi vm-start -p round-robin alice
	local first=$output
	run_vdi vm-start alice
	[ "$output" = "$first" ]
	run_vdi vm-start --session 1
	[ "$output" = "$first" ]
	[ "$(sql 'select count(*) from sessions')" = 1 ]
	[ "$(running_domains h1 | wc -l)" = 1 ]
}

@test "a host that refuses: undone, the session ends 'failed', the next host runs the desktop" {
	vm-copy -q --master m alice
	# SPICE cannot listen on an address this machine does not have: QEMU fails to start.
	vm-hosts set h1 --display-address 192.0.2.1
	run_vdi vm-start alice
	assert_output --regexp "^vm-start: warning: alice: session 1 on h1: starting domain: .*failed to initialize spice server"
	assert_line --regexp $'^alice\th2\t2\t'
	[ "$(sql "select state || ' ' || reason from sessions where id = 1")" = "ended failed" ]
	[ -z "$(running_domains h1)" ]
	[ ! -e "$LAB/pool/s1-alice.qcow2" ]
	[ "$(sql "select sessions || ' ' || mem_used from hosts where name = 'h1'")" = "0 0" ]
}

@test "unknown users and sessions are 3; an ended session is 5" {
	run_vdi 3 vm-start nobody
	run_vdi 3 vm-start --session 999
	# A number is a user's name: user 999 has no user VM.
	run_vdi 3 vm-start 999
	assert_output --partial "user '999' has no user VM"
	vm-copy -q --master m alice
	vm-assign -q alice
	sql "update sessions set state = 'ended', reason = 'admin' where id = 1"
	run_vdi 5 vm-start --session 1
}

@test "killed after the overlay, or after the domain started: the next vm-start finishes the job" {
	vm-copy -q --master m alice bob
	VDI_TEST_STOP_AT=overlay run_vdi 137 vm-start alice
	[ "$(sql 'select state from sessions where id = 1')" = starting ]
	[ -e "$LAB/pool/s1-alice.qcow2" ]
	run_vdi vm-start alice
	assert_line --regexp $'^alice\th1\t1\t'
	VDI_TEST_STOP_AT=domain run_vdi 137 vm-start bob
	[ "$(running_domains h2)" = vdi-s2-bob ]
	run_vdi vm-start bob --show-password
	[ "$(sql 'select state from sessions where id = 2')" = running ]
	[ "$(running_domains h2)" = vdi-s2-bob ]
}

@test "storm control across processes: start_parallel_host = 1 holds for 5 separate vm-start on one host" {
	seq -f 'g%g' 1 5 | vm-copy -q --master m
	vm-hosts drain h2
	vm-hosts drain h3
	echo 'start_parallel_host = 1' >"$VDI_CONFIG"
	local i pids=() n most=0
	for i in 1 2 3 4 5; do
		vm-start "g$i" >"$BATS_TEST_TMPDIR/out.$i" 2>&1 &
		pids+=($!)
	done
	# Watch the starts in flight on h1 while they run: never more than one.
	while kill -0 "${pids[@]}" 2>/dev/null || [ "$(jobs -rp | wc -l)" -gt 0 ]; do
		n=$(sql "select count(*) from sessions where state = 'starting'")
		[ "$n" -le "$most" ] || most=$n
		sleep 0.02
		[ "$(sql "select count(*) from sessions where state = 'running'")" = 5 ] && break
	done
	local fails=0
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || { fails=$((fails + 1)); cat "$BATS_TEST_TMPDIR/out.$((i + 1))" >&3; }; done
	echo "most starting at once: $most"
	[ "$fails" = 0 ]
	[ "$most" -le 1 ]
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 5 ]
	[ "$(running_domains h1 | wc -l)" = 5 ]
}

@test "20 concurrent vm-start on 3 hosts: every desktop up, no port clash, no double session, nothing overcommitted" {
	seq -f 'c%g' 1 20 | vm-copy -q --master m
	local i pids=()
	for i in $(seq 1 20); do
		vm-start "c$i" >"$BATS_TEST_TMPDIR/out.$i" 2>&1 &
		pids+=($!)
	done
	local fails=0
	for i in "${!pids[@]}"; do wait "${pids[$i]}" || fails=$((fails + 1)); done
	[ "$fails" = 0 ]
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 20 ]
	[ "$(sql "select count(distinct display_port) from sessions where state = 'running'")" = 20 ]
	[ "$(( $(running_domains h1 | wc -l) + $(running_domains h2 | wc -l) + $(running_domains h3 | wc -l) ))" = 20 ]
	[ "$(sql "select count(*) from host_usage_check where sessions <> sessions_real or mem_used <> mem_used_real")" = 0 ]
	[ "$(sql "select count(*) from (select uservm_id from sessions where state <> 'ended' group by uservm_id having count(*) > 1) x")" = 0 ]
}

@test "a batch starts in parallel under storm control: output in input order, one error line per bad user, the same user once" {
	vm-copy -q --master m u1 u2 u3 u4 u5 u6 u7 u8
	printf 'start_parallel = 4\nstart_parallel_host = 1\n' >"$VDI_CONFIG"
	run_vdi 3 vm-start -o tsv u1 u2 nobody u3 u4 u5 u6 u1 u7 u8
	[ "$(grep -v ': error: ' <<<"$output" | cut -f1 | paste -sd' ')" = "u1 u2 u3 u4 u5 u6 u1 u7 u8" ]
	[ "$(grep -c ': error: ' <<<"$output")" = 1 ]
	assert_output --partial "vm-start: error: nobody: "
	# u1 twice is one session, printed twice.
	[ "$(sql "select count(*) from sessions")" = 8 ]
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 8 ]
	[ "$(grep -c $'^u1\t' <<<"$output")" = 2 ]
	[ "$(grep $'^u1\t' <<<"$output" | sort -u | wc -l)" = 1 ]
	# Every host got its share; the counters are the sessions' (assert_agree in teardown).
	[ "$(running_domains h1 | wc -l)" -ge 2 ] && [ "$(running_domains h2 | wc -l)" -ge 2 ]
}

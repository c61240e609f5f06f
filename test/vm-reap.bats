#!/usr/bin/env bats
# vm-reap and vm-ls against a 3-host lab, with the faults DESIGN names:
# domains and volumes removed behind our back, a killed vm-start and
# vm-reap, a host whose libvirtd stops.  After vm-reap, the VMDB, the
# domains and the pool agree, and no capacity is leaked.

load helpers

setup_file() {
	lab_suite_start 3
}

teardown_file() {
	lab_suite_stop
}

setup() {
	lab_test_setup
	seq -f 'u%g' 1 6 | vm-copy -q --master m
}

teardown() {
	# A libvirtd a test stopped answers again, whatever the test did.
	local p
	for p in "$LAB"/h*/libvirtd.pid; do kill -CONT "$(cat "$p")" 2>/dev/null || true; done
	# Whatever the test did, the VMDB, libvirt and the pool must agree.
	local agree=0
	assert_agree || agree=1
	# A second lab a test started: stopped even when the test failed half-way.
	if [ -n "${LAB2:-}" ]; then
		vdi-lab stop "$LAB2" >/dev/null 2>&1 3>&- || true
		rm -rf "$LAB2"
	fi
	lab_clean
	return $agree
}

doms() { # every running domain of the lab, sorted
	local h
	for h in h1 h2 h3; do virsh -q -c "$(lab_uri "$h")" list --name 2>/dev/null; done | grep . | sort || true
}

@test "a domain powered off (destroyed behind our back) ends 'poweroff'; its overlay goes; capacity comes back" {
	vm-start -q u1 u2 u3
	virsh -q -c "$(lab_uri h2)" destroy vdi-s2-u2 >/dev/null
	run_vdi vm-reap -n
	assert_output $'end\tsession 2 (u2 on h2)\tpoweroff'
	[ "$(sql 'select state from sessions where id = 2')" = running ]
	run_vdi vm-reap
	[ "$(sql "select state || ' ' || reason from sessions where id = 2")" = "ended poweroff" ]
	[ "$(sql "select sessions from hosts where name = 'h2'")" = 0 ]
	assert_agree
	run_vdi vm-reap
	assert_output ""
}

@test "a batch of ends runs start_parallel sessions at once (start_parallel_host on one host); the lines keep the plan's order" {
	vm-start -q u1 u2 u3 u4 u5 u6
	local h d
	for h in h1 h2 h3; do
		for d in $(running_domains "$h"); do
			virsh -q -c "$(lab_uri "$h")" destroy "$d" >/dev/null
		done
	done
	run_vdi vm-reap -n -o tsv
	local plan=$output
	[ "$(grep -c $'\tpoweroff$' <<<"$plan")" = 6 ]
	printf 'start_parallel = 4\nstart_parallel_host = 1\n' >"$VDI_CONFIG"
	run_vdi vm-reap -o tsv
	assert_output "$plan"
	[ "$(sql "select count(*) from sessions where state = 'ended' and reason = 'poweroff'")" = 6 ]
	[ "$(sql "select count(*) from events where action = 'session-end'")" = 6 ]
	assert_agree
	# One at a time gives the same story.
	vm-start -q u1 u2
	printf 'start_parallel = 1\n' >"$VDI_CONFIG"
	run_vdi vm-reap --user u2 --user u1 -o tsv
	assert_output $'end\tsession 7 (u1 on h1)\tadmin\nend\tsession 8 (u2 on h2)\tadmin'
	assert_agree
}

@test "--user, --session and --host end sessions now (admin); unknown ones are 3" {
	vm-start -q u1 u2 u3 u4
	run_vdi vm-reap --user u1 --session 2 -o tsv
	assert_line $'end\tsession 1 (u1 on h1)\tadmin'
	assert_line $'end\tsession 2 (u2 on h2)\tadmin'
	run_vdi vm-reap --host h3
	assert_line --partial "session 3 (u3 on h3)"
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 1 ]
	assert_agree
	run_vdi 3 vm-reap --user nobody
	run_vdi 3 vm-reap --host nosuch
	run_vdi 3 vm-reap --session 999
}

@test "--max-age ends old sessions; an assigned session past assign_ttl is released" {
	vm-start -q u1
	vm-assign -q u2
	sql "update sessions set created = created - 7200"
	echo 'assign_ttl = 1h' >"$VDI_CONFIG"
	run_vdi vm-reap
	assert_output $'end\tsession 2 (u2 on h2)\texpired'
	run_vdi vm-reap --max-age 1h
	assert_output $'end\tsession 1 (u1 on h1)\texpired'
	assert_agree
}

@test "vm-start killed after the overlay: vm-reap undoes it past start_ttl ('failed')" {
	VDI_TEST_STOP_AT=overlay run_vdi 137 vm-start u1
	[ -e "$LAB/pool/s1-u1.qcow2" ]
	run_vdi vm-reap
	assert_output ""    # not past start_ttl yet
	echo 'start_ttl = 1s' >"$VDI_CONFIG"
	VDI_TEST_CLOCK=2 run_vdi vm-reap
	assert_output $'end\tsession 1 (u1 on h1)\tfailed'
	assert_agree
}

@test "vm-start killed after the domain started: vm-reap finishes it (running)" {
	VDI_TEST_STOP_AT=domain run_vdi 137 vm-start u1
	echo 'start_ttl = 1s' >"$VDI_CONFIG"
	VDI_TEST_CLOCK=2 run_vdi vm-reap
	assert_output $'finish\tsession 1 (u1 on h1)\trunning'
	[ "$(sql 'select state from sessions where id = 1')" = running ]
	assert_agree
}

@test "vm-start killed on another machine mid-claim: vm-reap here waits out its lease, then takes it over" {
	# Machine A: another host name and boot id in the claim's owner token.
	VDI_TEST_HOST=machine-a/boot-a VDI_TEST_STOP_AT=domain run_vdi 137 vm-start u1
	assert_equal "$(sql "select state from sessions where id = 1")" starting
	[[ "$(sql "select owner from sessions where id = 1")" == machine-a/boot-a/* ]]
	# Past start_ttl, but machine A's lease runs: it may still be at work; nothing is touched.
	echo 'start_ttl = 1s' >"$VDI_CONFIG"
	VDI_TEST_CLOCK=2 run_vdi vm-reap
	assert_output ""
	assert_equal "$(sql "select state from sessions where id = 1")" starting
	# Its lease ran out (nobody renewed it): this machine takes the claim over and finishes the start.
	VDI_TEST_CLOCK=62 run_vdi vm-reap
	assert_output $'finish\tsession 1 (u1 on h1)\trunning'
	assert_equal "$(sql "select state from sessions where id = 1")" running
	assert_agree
}

@test "vm-reap killed half-way (after committing stopping): the next run finishes past stop_ttl" {
	vm-start -q u1 u2
	VDI_TEST_STOP_AT=stopping run_vdi 137 vm-reap --user u2
	[ "$(sql 'select state from sessions where id = 2')" = stopping ]
	[ "$(sql "select sessions from hosts where name = 'h2'")" = 1 ]   # still held until it really ends
	virsh -q -c "$(lab_uri h1)" destroy vdi-s1-u1 >/dev/null
	run_vdi vm-reap
	assert_output $'end\tsession 1 (u1 on h1)\tpoweroff'
	echo 'stop_ttl = 1s' >"$VDI_CONFIG"
	VDI_TEST_CLOCK=2 run_vdi vm-reap
	assert_output $'end\tsession 2 (u2 on h2)\tadmin'
	assert_agree
}

@test "--orphans: our domains without a session go, then their overlays; foreign domains stay; sessions with nothing left end 'orphan'" {
	vm-start -q u1 u2 u3
	# u1: session ended behind vm-reap's back (the domain and overlay are orphans)
	sql "update sessions set state = 'ended', reason = 'admin' where id = 1"
	# u2: its overlay deleted and its domain destroyed behind our back
	virsh -q -c "$(lab_uri h2)" destroy vdi-s2-u2 >/dev/null
	rm -f "$LAB/pool/s2-u2.qcow2"
	printf '<domain type="qemu"><name>foreign</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os></domain>' >"$BATS_TEST_TMPDIR/f.xml"
	virsh -q -c "$(lab_uri h3)" create "$BATS_TEST_TMPDIR/f.xml" >/dev/null
	run_vdi vm-reap --orphans -o tsv
	assert_line $'end\tsession 2 (u2 on h2)\torphan'
	assert_line $'destroy\tvdi-s1-u1\torphan'
	# Its disk was open in the guest this run destroyed: it goes in the next run.
	refute_line $'delete\ts1-u1.qcow2\torphan'
	run_vdi vm-reap --orphans -o tsv
	assert_output $'delete\ts1-u1.qcow2\torphan'
	run doms
	assert_output $'foreign\nvdi-s3-u3'
	virsh -q -c "$(lab_uri h3)" destroy foreign >/dev/null
	assert_agree
}

@test "a host whose libvirtd stopped: its sessions are left alone (75) until host_lost_after, then end 'host-lost'" {
	LAB2=$(mktemp -d /tmp/vdi-lab2.XXXXXX)
	local lab2=$LAB2
	vdi-lab start -n 1 "$lab2" >"$lab2/hosts.tsv" 3>&-
	# h9 sees the first lab's pool: shared storage, as every host must.
	local u9
	u9=$(cut -f2 "$lab2/hosts.tsv")
	virsh -q -c "$u9" pool-destroy vdi >/dev/null
	virsh -q -c "$u9" pool-undefine vdi >/dev/null
	virsh -q -c "$u9" pool-define-as vdi dir --target "$LAB/pool" >/dev/null
	virsh -q -c "$u9" pool-start vdi >/dev/null
	vm-hosts -q add h9 "$u9"
	vm-hosts -q drain h1 h2 h3
	vm-start -q u1
	[ "$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = 1")" = h9 ]
	vdi-lab stop "$lab2" 2>/dev/null
	run_vdi 75 vm-reap
	assert_output --partial "host h9 does not answer"
	[ "$(sql 'select state from sessions where id = 1')" = running ]
	run_vdi 75 vm-hosts poll h9
	sql "update hosts set down_since = down_since - 3600 where name = 'h9'"
	run_vdi vm-reap
	assert_output $'end\tsession 1 (u1 on h9)\thost-lost'
	[ "$(sql "select sessions from hosts where name = 'h9'")" = 0 ]
	# Its overlay stays in the shared pool: h9 may still run the guest on it, and the audit waits for h9.
	[ -e "$LAB/pool/s1-u1.qcow2" ]
	run_vdi 75 vm-reap --orphans
	# The administrator vouches h9 is off: the overlay goes, the pool's audit no longer waits for it.
	run_vdi vm-hosts fence h9
	assert_output "vm-hosts: fenced host h9 (vouched off): 0 sessions ended host-lost, 1 overlay deleted"
	[ ! -e "$LAB/pool/s1-u1.qcow2" ]
	[ "$(sql "select admin || ' ' || (case when fenced is not null then 1 else 0 end) from hosts where name = 'h9'")" = "maintenance 1" ]
	run_vdi vm-hosts list -o tsv
	assert_line --regexp $'^h9\t[^\t]*\tfenced\t'
	run_vdi vm-reap --orphans
	assert_output ""
	[ "$(sql "select count(*) from events where object = 'h9' and action = 'host-fenced'")" = 1 ]
}

@test "fencing a host cut off while its guest runs: the agent first, sessions end, overlays go; when it answers again its domains are destroyed" {
	vm-start -q u1 u2 u3
	local h dom
	h=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = 2")
	dom=$(sql "select domain from sessions where id = 2")
	printf 'poll_timeout = 1s\nfence_command = %s\n' "$BATS_TEST_TMPDIR/fence" >"$VDI_CONFIG"
	# A host that answers is not off: refused, whatever an agent would say.
	printf '#!/bin/sh\necho "$@" >>"%s"\nexit 0\n' "$BATS_TEST_TMPDIR/agent.log" >"$BATS_TEST_TMPDIR/fence"
	chmod +x "$BATS_TEST_TMPDIR/fence"
	run_vdi 5 vm-hosts fence "$h"
	assert_output --partial "answers: it is not off, so it is not fenced (the fence agent said it was)"
	[ "$(sql "select count(*) from hosts where fenced is not null")" = 0 ]
	# Cut off: its libvirtd does not answer, its guest runs on.
	kill -STOP "$(cat "$LAB/$h/libvirtd.pid")"
	# -n runs no agent and changes nothing.
	: >"$BATS_TEST_TMPDIR/agent.log"
	run_vdi vm-hosts fence -n "$h"
	assert_output --partial "would fence host $h: it does not answer (the fence agent was not run)"
	[ ! -s "$BATS_TEST_TMPDIR/agent.log" ]
	[ "$(sql "select state from sessions where id = 2")" = running ]
	# An agent that fails: nothing is recorded, and its last words are in the error.
	printf '#!/bin/sh\necho "power off: BMC timed out" >&2\nexit 3\n' >"$BATS_TEST_TMPDIR/fence"
	run_vdi 1 vm-hosts fence "$h"
	assert_output --partial "the fence agent failed; nothing was recorded: $BATS_TEST_TMPDIR/fence exited 3: power off: BMC timed out"
	[ "$(sql "select state from sessions where id = 2")" = running ]
	# The agent works: the session ends host-lost, its overlay goes, capacity comes back.
	printf '#!/bin/sh\necho "$@" >>"%s"\nexit 0\n' "$BATS_TEST_TMPDIR/agent.log" >"$BATS_TEST_TMPDIR/fence"
	run_vdi vm-hosts fence "$h"
	assert_output "vm-hosts: fenced host $h (turned off by the fence agent): 1 session ended host-lost, 1 overlay deleted"
	assert_equal "$(cat "$BATS_TEST_TMPDIR/agent.log")" "$h $(lab_uri "$h")"
	[ "$(sql "select state || ' ' || reason from sessions where id = 2")" = "ended host-lost" ]
	[ ! -e "$LAB/pool/s2-u2.qcow2" ]
	[ "$(sql "select sessions || ' ' || mem_used from hosts where name = '$h'")" = "0 0" ]
	# Nothing new lands there.
	run_vdi vm-assign -n u2
	refute_output --partial "$h"
	# It answers again with the guest still running: vm-reap (no --orphans needed) destroys it.
	kill -CONT "$(cat "$LAB/$h/libvirtd.pid")"
	[ "$(running_domains "$h")" = "$dom" ]
	run_vdi vm-reap
	assert_output $'destroy\t'"$dom"$'\torphan'
	[ -z "$(running_domains "$h")" ]
	# Back in service: undrain ends the fence.
	run_vdi vm-hosts undrain "$h"
	[ "$(sql "select admin || ' ' || (case when fenced is null then 1 else 0 end) from hosts where name = '$h'")" = "active 1" ]
}

@test "two vm-reap runs at once: the second skips, and says so only without -q" {
	local holder
	hold_singleton reap 8
	run_vdi vm-reap
	assert_output --partial "another vm-reap is running"
	run_vdi vm-reap -q
	assert_output ""
	kill "$holder"
	wait "$holder" || true
}

@test "--expired deletes user VMs past their expiry that have no session" {
	vm-copy -q --master m --ttl 1s old1
	vm-copy -q --master m --ttl 1s old2
	vm-start -q old2
	VDI_TEST_CLOCK=2 run_vdi vm-reap --expired
	assert_line $'delete\tuser VM of old1\texpired'
	refute_output --partial old2
	[ ! -e "$LAB/pool/user-old1.qcow2" ]
	[ "$(sql "select count(*) from uservms where username like 'old%'")" = 1 ]
}

@test "vm-ls: where is each user's desktop" {
	vm-start -q u1 u2
	run_vdi vm-ls -o tsv u1 u2 u3
	# The address is empty: the lab's blank guest never asks for one.
	# No vm-watch runs: whether a viewer is in is unknown (not "none yet").
	# Then: no warm image, so its desktops boot (cold); no home disk (size, use); its master is up to date.
	assert_line --index 0 --regexp $'^u1\tm\t67108864\t1\t33554432\t\t1\trunning\th1\t[0-9T:Z-]+\tspice://127.0.0.1:[0-9]+\t\tready\tunknown\t\tcold\t\t\t$'
	assert_line --index 2 --regexp $'^u3\tm\t.*\t\t\t\t\t\tready\t\t\tcold\t\t\t$'
	# A table on a terminal fits it, leaving out what matters least; TSV above kept every column.
	run script -qec "COLUMNS=80 vm-ls" /dev/null
	assert_success
	output=${output//$'\r'/}
	mapfile -t lines <<<"$output"
	local line
	while IFS= read -r line; do
		line=${line%$'\r'}
		[ "${#line}" -le 80 ] || { echo "# too wide (${#line}): $line" >&3; false; }
	done <<<"$output"
	assert_line --index 0 --regexp '^USER +MASTER .*STATE +HOST +.*VIEWER$'
	# An empty list still has its header with -o table; a desktop on a host that is down says so.
	run_vdi vm-ls -o table --state migrating
	assert_output --regexp '^USER +MASTER +MEM'
	sql "update hosts set health = 'down' where name = 'h1'"
	run_vdi vm-ls -o json u1
	assert_equal "$(jq -r '.[0].state' <<<"$output")" "running, host down"
	sql "update hosts set health = 'up' where name = 'h1'"
	run_vdi vm-ls --sessions --host h2 -o tsv
	assert_output --regexp $'^2\tu2\th2\trunning\t'
	run_vdi vm-ls --state running -o json
	assert_output --partial '"user":"u1"'
	refute_output --partial '"user":"u3"'
	run_vdi 3 vm-ls nobody
	# The same user, asked for by session: the same answer.
	run_vdi 3 vm-ls --sessions nobody
	assert_output --regexp "^vm-ls: error: .*'nobody'"
	run_vdi 2 vm-ls --state sleeping
}

#!/usr/bin/env bats
# vm-hosts against a lab of three real libvirt hosts.

load helpers

setup_file() {
	lab_start 3
}

teardown_file() {
	lab_stop
}

setup() {
	common_setup
}

# A diskless 64 MiB guest: boots to "no bootable device" and idles.
guest_xml() { # NAME [METADATA]
	cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  ${2:+<metadata>$2</metadata>}
  <devices><graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices>
</domain>
XML
}

@test "add records each lab host's CPUs and memory, and the host is up" {
	add_lab_hosts
	run_vdi vm-hosts list -o json
	run python3 -c '
import json, sys
hs = json.loads(sys.argv[1])
assert [h["name"] for h in hs] == ["h1", "h2", "h3"], hs
for h in hs:
    assert h["state"] == "up" and h["vcpus"] > 0 and h["mem_total"] > 2**20, h
print("ok")' "$output"
	assert_output ok
}

@test "add says what it found and which network sessions join: the host's active 'default', else none and how to set one" {
	run_vdi vm-hosts add h1 "$(lab_uri h1)"
	# The report is read before it is cleared (it said "0 CPUs").
	assert_output --regexp "^vm-hosts: added host h1: [1-9][0-9]* CPUs, [0-9.]+[MG] memory, pool vdi; sessions join no network \(they get no NIC: vm-hosts set --network\)$"
	assert_equal "$(sql "select coalesce(network, '-') from hosts where name = 'h1'")" -
	# h2 gets an active network named default (its own bridge and subnet): taken, as virt-install does.
	local u2 net=$BATS_TEST_TMPDIR/default.xml
	u2=$(lab_uri h2)
	printf "<network><name>default</name><bridge name='vdidf%s'/><ip address='10.250.%s.1' netmask='255.255.255.0'/></network>\n" \
		"$$" "$((RANDOM % 200 + 20))" >"$net"
	virsh -q -c "$u2" net-undefine default >/dev/null 2>&1 || true
	virsh -q -c "$u2" net-define "$net" >/dev/null
	virsh -q -c "$u2" net-start default >/dev/null
	run_vdi vm-hosts add h2 "$u2"
	virsh -q -c "$u2" net-destroy default >/dev/null
	assert_output --partial "sessions join network default"
	assert_equal "$(sql "select network from hosts where name = 'h2'")" default
	# Named by hand, the host's own choice is not looked for.
	run_vdi vm-hosts add h3 "$(lab_uri h3)" --bridge br0
	assert_output --partial "sessions join bridge br0"
}

@test "list -o json has the documented keys, memory in bytes" {
	vm-hosts add h1 "$(lab_uri h1)" --tag gpu --tag ssd --reserve-mem 512M
	run_vdi vm-hosts list -o json
	run python3 -c '
import json, sys
h = json.loads(sys.argv[1])[0]
need = ["name", "uri", "state", "sessions", "vcpus", "vcpus_used", "mem_total", "mem_free",
        "mem_reserved", "load", "tags", "last_poll", "last_error"]
missing = [k for k in need if k not in h]
assert not missing, missing
assert h["tags"] == ["gpu", "ssd"], h["tags"]
assert h["reserve_mem"] == 512 * 2**20
assert isinstance(h["mem_total"], int)
print("ok")' "$output"
	assert_output ok
}

@test "an empty list keeps its header in a table; a narrow terminal drops the columns that matter least" {
	run_vdi vm-hosts list -o table
	assert_output --regexp '^NAME +STATE +SESSIONS +VCPUS +MEMORY +LOAD +TAGS +LAST_POLL +LAST_ERROR$'
	run_vdi vm-master list -o table
	assert_output --regexp '^NAME +STATE +OS +APPS'
	add_lab_hosts
	run script -qec "COLUMNS=38 vm-hosts list" /dev/null
	output=${output//$'\r'/}
	mapfile -t lines <<<"$output"
	assert_line --index 0 --regexp '^NAME +STATE +SESSIONS +VCPUS +MEMORY$'
}

@test "TSV in a pipe has no header; table has one" {
	vm-hosts add h1 "$(lab_uri h1)"
	run_vdi vm-hosts list
	assert_line --index 0 --regexp $'^h1\tqemu\\+unix://'
	run_vdi vm-hosts list -o table
	assert_line --index 0 --regexp '^NAME +STATE +SESSIONS'
}

@test "add of a name that exists is a conflict (5), and so is the same URI under a new name" {
	vm-hosts add h1 "$(lab_uri h1)"
	run_vdi 5 vm-hosts add h1 "$(lab_uri h2)"
	assert_output --partial "exists already"
	run_vdi 5 vm-hosts add other "$(lab_uri h1)"
	assert_output --partial "another name"
	[ "$(sql 'select count(*) from hosts')" = 1 ]
}

@test "bad host names are refused with exit 2 and nothing recorded" {
	local bad
	for bad in "" "-x" ".hidden" "a/b" "a b" "x;rm" "$(printf 'a%.0s' {1..65})" "ünï"; do
		run_vdi 2 vm-hosts add -- "$bad" "$(lab_uri h1)"
		assert_output --regexp "(invalid|empty) host name"
	done
	run_vdi vm-hosts list -o tsv
	assert_output ""
}

@test "bad URIs are refused with exit 2" {
	local bad
	for bad in "http://example.org/system" "qemu:///nowhere" "lxc:///system" "qemu:///system x" \
		"qemu+ssh://h/system?a='b'" "not a uri" ""; do
		run_vdi 2 vm-hosts add hx "$bad"
		assert_output --regexp "(invalid|empty) host URI"
	done
}

@test "add of an unreachable host fails with 75 and records nothing" {
	run_vdi 75 vm-hosts add gone "qemu+unix:///system?socket=$BATS_TEST_TMPDIR/nobody-listens"
	assert_output --partial "cannot connect"
	[ "$(sql 'select count(*) from hosts')" = 0 ]
}

@test "add checks the pool: a missing pool is exit 3 and nothing is recorded" {
	run_vdi 3 vm-hosts add h1 "$(lab_uri h1)" --pool nosuchpool
	assert_output --partial "storage pool 'nosuchpool' not found"
	[ "$(sql 'select count(*) from hosts')" = 0 ]
}

@test "add --no-check records without connecting; the host is unknown until polled" {
	run_vdi vm-hosts add later "qemu+ssh://root@host.invalid/system" --no-check
	run_vdi vm-hosts list -o tsv
	assert_output --regexp $'^later\t[^\t]+\tunknown\t'
}

@test "negative, absurd and malformed numbers and sizes are refused with exit 2" {
	local u
	u=$(lab_uri h1)
	while read -r opt val; do
		run_vdi 2 vm-hosts add h1 "$u" --no-check "$opt" "$val"
	done <<'BAD'
--max-sessions -1
--max-sessions 1e3
--max-sessions 99999999999999999999
--max-sessions abc
--cpu-ratio 0
--cpu-ratio -2
--cpu-ratio 1000
--cpu-ratio nan
--cpu-ratio inf
--ram-ratio 0
--ram-ratio 100
--reserve-mem -1G
--reserve-mem 12X
--reserve-mem 99999999999T
--reserve-mem 2E
--reserve-mem 1.00000001K
--display-address a/b
--pool ../etc
--tag a,b
BAD
	run_vdi vm-hosts list -o tsv
	assert_output ""
}

@test "set changes limits and tags; --no-tags clears; --max-sessions none lifts the cap" {
	vm-hosts add h1 "$(lab_uri h1)" --tag a
	run_vdi vm-hosts set h1 --max-sessions 7 --cpu-ratio 2.5 --ram-ratio 0.9 --reserve-mem 1G \
		--tag x --tag y --display-address desk.example.org
	assert_success
	run_vdi vm-hosts show h1 -o json
	run python3 -c '
import json, sys
h = json.loads(sys.argv[1])
assert h["max_sessions"] == 7 and h["cpu_ratio"] == 2.5 and h["ram_ratio"] == 0.9, h
assert h["reserve_mem"] == 2**30 and h["tags"] == ["x", "y"], h
assert h["display_address"] == "desk.example.org", h
print("ok")' "$output"
	assert_output ok
	vm-hosts set h1 --no-tags --max-sessions none
	run_vdi vm-hosts show h1 -o json
	assert_output --partial '"tags":[]'
	assert_output --partial '"max_sessions":null'
	run_vdi 3 vm-hosts set nosuch --max-sessions 3
	assert_output --partial "no host 'nosuch'"
}

@test "drain, undrain and maintenance change the state and are recorded as events" {
	add_lab_hosts
	vm-hosts drain h1
	vm-hosts maintenance h2
	run_vdi vm-hosts list -o tsv
	assert_line --regexp $'^h1\t[^\t]+\tdraining\t'
	assert_line --regexp $'^h2\t[^\t]+\tmaintenance\t'
	assert_line --regexp $'^h3\t[^\t]+\tup\t'
	printf 'h1\nh2 some comment\n' | vm-hosts undrain
	run_vdi vm-hosts list -o tsv
	assert_line --regexp $'^h1\t[^\t]+\tup\t'
	assert_line --regexp $'^h2\t[^\t]+\tup\t'
	[ "$(sql_list , "select detail from events where action = 'host-admin' and object = 'h1' order by id")" = "draining,active" ]
	run_vdi 3 vm-hosts drain nosuch
}

@test "dry runs change nothing" {
	vm-hosts add h1 "$(lab_uri h1)"
	run_vdi vm-hosts add h2 "$(lab_uri h2)" -n
	assert_output --partial "would add host h2"
	run_vdi vm-hosts drain -n h1
	assert_output --partial "would mark host h1 draining"
	run_vdi vm-hosts rm -n h1
	run_vdi vm-hosts list -o tsv
	assert_output --regexp $'^h1\t[^\t]+\tup\t'
	[ "$(sql 'select count(*) from hosts')" = 1 ]
	run_vdi 2 vm-hosts list -n
}

@test "rm refuses while sessions are not ended, unless --force; unknown host is 3" {
	vm-hosts add h1 "$(lab_uri h1)"
	sql "insert into masters (name, pool, volume, format, virtual_size, sha256, source, mem, vcpus, disk, created)
	     values ('m', 'vdi', 'm.qcow2', 'qcow2', 1, 'x', 'file:///m', 67108864, 1, 1, 0);
	     insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, created)
	     values ('alice', 'ready', 1, 'vdi', 'u.qcow2', 'u.iso', 'alice', 67108864, 1, 1, 0);
	     insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed)
	     values (1, 1, 'running', 67108864, 1, 0, 0);"
	run_vdi vm-hosts list -o json
	assert_output --partial '"sessions":1,'
	assert_output --partial '"mem_reserved":67108864'
	run_vdi 5 vm-hosts rm h1
	assert_output --partial "1 session that is not ended"
	run_vdi vm-hosts rm h1 --force
	[ "$(sql 'select count(*) from hosts')" = 0 ]
	[ "$(sql "select state || ',' || reason from sessions")" = "ended,admin" ]
	run_vdi 3 vm-hosts rm h1
}

@test "poll: 3 lab hosts, 1 dead and 1 hung: under 10 s, exactly the two bad ones down, exit 75" {
	add_lab_hosts
	vm-hosts add dead "qemu+unix:///system?socket=$BATS_TEST_TMPDIR/dead-sock" --no-check
	hung_socket "$BATS_TEST_TMPDIR/hung-sock"
	vm-hosts add hung "qemu+unix:///system?socket=$BATS_TEST_TMPDIR/hung-sock" --no-check
	SECONDS=0
	run_vdi 75 vm-hosts poll -o tsv
	local took=$SECONDS
	stop_pidfile "$BATS_TEST_TMPDIR/hung-sock.pid"
	[ "$took" -lt 10 ]
	run_vdi vm-hosts list -o tsv
	assert_line --regexp $'^dead\t[^\t]+\tdown\t'
	assert_line --regexp $'^hung\t[^\t]+\tdown\t'
	assert_line --regexp $'^h1\t[^\t]+\tup\t'
	assert_line --regexp $'^h2\t[^\t]+\tup\t'
	assert_line --regexp $'^h3\t[^\t]+\tup\t'
	[ "$(sql "select last_error from hosts where name = 'hung'")" = "no answer within 5.0 s" ]
	[ "$(sql "select count(*) from hosts where health = 'down'")" = 2 ]
}

@test "poll: a down host that answers again is up" {
	local link=$BATS_TEST_TMPDIR/flaky-sock
	vm-hosts add flaky "qemu+unix:///system?socket=$link" --no-check
	run_vdi 75 vm-hosts poll flaky
	run_vdi vm-hosts show flaky -o json
	assert_output --partial '"state":"down"'
	assert_output --partial 'No such file'
	ln -s "$LAB/h1/libvirt-sock" "$link"
	run_vdi vm-hosts poll flaky
	run_vdi vm-hosts show flaky -o json
	assert_output --partial '"state":"up"'
	assert_output --partial '"last_error":null'
	[ "$(sql_list , "select action from events where object = 'flaky' order by id")" = "host-add,host-down,host-up" ]
}

@test "poll records load and domains; show lists ours with session and user, and counts foreign ones" {
	local u
	u=$(lab_uri h2)
	vm-hosts add h2 "$u"
	guest_xml vdi-s7-alice "<vdi:session xmlns:vdi='http://vdi-tools.org/xmlns/session/1' id='7' user='alice' uservm='3'/>" >"$BATS_TEST_TMPDIR/ours.xml"
	guest_xml foreign1 >"$BATS_TEST_TMPDIR/foreign.xml"
	virsh -q -c "$u" create "$BATS_TEST_TMPDIR/ours.xml" >/dev/null
	virsh -q -c "$u" create "$BATS_TEST_TMPDIR/foreign.xml" >/dev/null
	run_vdi vm-hosts poll h2 -o json
	local out=$output
	virsh -q -c "$u" destroy vdi-s7-alice >/dev/null
	virsh -q -c "$u" destroy foreign1 >/dev/null
	echo "$out"
	[[ $out == *'"domains":2,"domains_ours":1'* ]]
	run_vdi vm-hosts show h2 -o json
	run python3 -c '
import json, sys
h = json.loads(sys.argv[1])
assert h["domains"] == 2 and h["domains_ours"] == 1 and h["domains_foreign"] == 1, h
assert h["load"] is not None and 0 <= h["load"] <= 1, h
seen = {d["domain"]: d for d in h["domains_seen"]}
assert seen["vdi-s7-alice"]["ours"] and seen["vdi-s7-alice"]["session"] == 7, seen
assert seen["vdi-s7-alice"]["user"] == "alice", seen
assert not seen["foreign1"]["ours"] and seen["foreign1"]["user"] is None, seen
assert seen["foreign1"]["mem"] == 64 * 2**20, seen
print("ok")' "$output"
	assert_output ok
	run_vdi vm-hosts show h2 -o table
	assert_output --partial "domains_seen:"
	assert_output --regexp "vdi-s7-alice +running +yes +7 +alice"
}

@test "poll of named hosts only asks those; an unknown name is 3" {
	add_lab_hosts
	run_vdi vm-hosts poll h2 -o tsv
	assert_equal "${#lines[@]}" 1
	assert_line --index 0 --regexp $'^h2\tup\t'
	run_vdi 3 vm-hosts poll h2 nosuch
}

@test "usage errors are exit 2 with one clear line" {
	run_vdi 2 vm-hosts
	assert_line --index 0 "vm-hosts: error: missing command"
	run_vdi 2 vm-hosts frobnicate
	run_vdi 2 vm-hosts add h1
	run_vdi 2 vm-hosts show
	run_vdi 2 vm-hosts list --force
	run_vdi 2 vm-hosts list -o xml
	assert_line --index 0 --partial "unknown format 'xml'"
}

@test "poll -n asks the hosts and records nothing" {
	add_lab_hosts
	sql "update hosts set last_poll = 1, health = 'unknown'"
	run_vdi vm-hosts poll -n -o tsv
	[ "$(grep -c $'\tup\t' <<<"$output")" = 3 ]
	[ "$(sql_list , "select last_poll || health from hosts order by id")" = "1unknown,1unknown,1unknown" ]
	run_vdi vm-hosts poll -q
	[ "$(sql "select count(*) from hosts where health = 'up'")" = 3 ]
}

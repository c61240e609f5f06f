#!/usr/bin/env bats
# vm-assign: filters, policies, explanations and concurrency, against lab
# hosts whose capacity is shaped with vm-hosts' own options.

load helpers

setup_file() {
	lab_suite_start 3 16M
}

teardown_file() {
	lab_suite_stop
}

setup() {
	common_setup
	add_lab_hosts
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 256M --vcpus 1
}

teardown() {
	# Whatever the test did, the VMDB, libvirt and the pool must agree.
	local agree=0
	assert_agree || agree=1
	rm -f "$LAB"/pool/master-* "$LAB"/pool/user-*
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null 2>&1 || true
	small_fs_drop
	return $agree
}

# mem_cap HOST SIZE: make the memory a host may give out exactly SIZE (bytes).
mem_cap() {
	local total
	total=$(sql "select mem_total from hosts where name = '$1'")
	vm-hosts set "$1" --ram-ratio 1 --reserve-mem $((total - $2))
}

users() { # users N [vm-copy options]: u1..uN
	local n=$1
	shift
	seq -f 'u%g' 1 "$n" | vm-copy -q --master m "$@"
}

hosts_of() { # the host each assignment of the output got, space-separated
	cut -f2 <<<"$1" | paste -sd' '
}

end_session() {
	sql "update sessions set state = 'ended', reason = 'logoff', ended = 0 where id = $1"
}

@test "least-sessions (the paper's VMQS) spreads by session count, ties by name" {
	users 5
	run_vdi vm-assign u1 u2 u3 u4 u5
	[ "$(hosts_of "$output")" = "h1 h2 h3 h1 h2" ]
	assert_line --index 0 --regexp $'^u1\th1\t[0-9]+$'
}

@test "least-load balances the dominant resource, memory or vCPUs (hand-computed)" {
	users 4
	mem_cap h1 $((1 << 30))
	mem_cap h2 $((2 << 30))
	mem_cap h3 $((4 << 30))
	vm-hosts set h1 --cpu-ratio 16
	vm-hosts set h2 --cpu-ratio 16
	vm-hosts set h3 --cpu-ratio 16
	run_vdi vm-assign -p least-load u1 u2 u3 u4
	# 256M and 1 of 32 vCPUs each: memory dominates.  Memory share after placing:
	# u1: h3 .0625 < h2 .125 < h1 .25; u2: h2 .125 = h3 .125, h2 by name; u3: h3 .125 < h2 .25;
	# u4: h3 .1875 < h1 .25 = h2 .25
	[ "$(hosts_of "$output")" = "h3 h2 h3 h3" ]
	# Now make vCPUs the scarce one on h3: 1 vCPU left after u5 would take it (4 of 4).
	vm-hosts set h3 --cpu-ratio 2
	vm-copy -q --master m u5
	run_vdi vm-assign -p least-load u5
	# h3: max(1.25G/4G = .3125, 4/4 = 1) = 1; h1: max(.25, 1/32); h2: max(.25, 1/32): h1 by name
	assert_output --regexp $'^u5\th1\t'
}

@test "round-robin keeps its cursor in the VMDB across processes" {
	users 4
	run_vdi vm-assign -p round-robin u1
	run_vdi vm-assign -p round-robin u2
	run_vdi vm-assign -p round-robin u3 u4
	[ "$(sql_list ' ' "select h.name from sessions s join hosts h on h.id = s.host_id order by s.id")" = "h1 h2 h3 h1" ]
}

@test "pack fills the fullest host that still fits" {
	users 6
	mem_cap h1 $((1 << 30))
	mem_cap h2 $((1 << 30))
	mem_cap h3 $((1 << 30))
	run_vdi vm-assign -p pack u1 u2 u3 u4 u5 u6
	[ "$(hosts_of "$output")" = "h1 h1 h1 h1 h2 h2" ]
}

@test "sticky returns to the last host while it passes the filters, else falls back" {
	users 4
	run_vdi vm-assign u1
	assert_output --regexp $'^u1\th1\t'
	end_session "$(cut -f3 <<<"$output")"
	vm-assign u2 u3 >/dev/null   # h2, h3: least-sessions alone would now pick h1 anyway
	vm-assign u4 >/dev/null      # h1: now h1 has the most sessions with h2, h3 tied
	run_vdi vm-assign -p sticky --explain -n u1 -o json
	assert_output --partial '"host":"h1"'
	assert_output --partial 'sticky: h1 ran the user'
	run_vdi vm-assign -p sticky u1
	assert_output --regexp $'^u1\th1\t'
	end_session "$(cut -f3 <<<"$output")"
	vm-hosts drain h1
	run_vdi vm-assign -p sticky u1
	assert_output --regexp $'^u1\th2\t'
}

@test "random2 with --seed is reproducible and picks the better of the two drawn" {
	users 2
	run_vdi vm-assign -p random2 --seed 42 --explain -n u1 -o json
	local first=$output
	run_vdi vm-assign -p random2 --seed 42 --explain -n u1 -o json
	[ "$output" = "$first" ]
	run python3 -c '
import json, sys
rows = json.loads(sys.argv[1])
drawn = [r for r in rows if r["score"] is not None and r["score"] < 1e5]
assert len(drawn) == 2, rows
win = [r for r in rows if r["chosen"]][0]
assert win["rank"] == 1 and win["score"] == min(r["score"] for r in drawn), rows
print("ok")' "$output"
	assert_output ok
}

@test "each filter names its reason in --explain" {
	users 1 --tag gpu
	vm-hosts drain h1
	vm-hosts set h2 --tag gpu --max-sessions 0
	vm-hosts set h3 --tag gpu --cpu-ratio 0.1
	run_vdi 4 vm-assign --explain -n u1 -o tsv
	assert_output --partial "no host: 1 draining, 1 full (sessions), 1 full (vcpus) for u1"
	vm-hosts set h2 --max-sessions none --reserve-mem 1P
	vm-hosts undrain h1
	run_vdi 4 vm-assign -n u1
	assert_output --partial "1 without the tags, 1 full (memory), 1 full (vcpus)"
	vm-hosts maintenance h1
	vm-hosts set h3 --cpu-ratio 4 --pool other
	run_vdi 4 vm-assign -n u1
	assert_output --partial "1 maintenance, 1 without the pool, 1 full (memory)"
}

@test "--explain shows every host's verdicts, numbers, score, rank and the winner's why" {
	users 1
	vm-hosts drain h3
	run_vdi vm-assign --explain u1 -o json
	run python3 -c '
import json, sys
rows = {r["host"]: r for r in json.loads(sys.argv[1])}
assert rows["h3"]["verdict"] == "draining" and rows["h3"]["rank"] is None, rows
assert rows["h1"]["chosen"] and rows["h1"]["rank"] == 1 and "least-sessions" in rows["h1"]["why"], rows
assert rows["h2"]["rank"] == 2 and rows["h2"]["memory"].startswith("0+256M/"), rows
print("ok")' "$output"
	assert_output ok
	# Explaining is read-only, with or without -n.
	[ "$(sql 'select count(*) from sessions')" = 0 ]
}

@test "--explain of a user who runs says where and why, from the placement's recorded reason" {
	users 3
	vm-assign u1 u2 >/dev/null
	run_vdi vm-assign u3
	local s3
	s3=$(cut -f3 <<<"$output")
	# The event records the policy, the winner's score and the runner-up.
	run sql "select detail from events where action = 'session-assign' and object = 'u3'"
	assert_output "session=$s3 host=h3 least-sessions: h3 (score 0), runner-up h1 (score 1)"
	run_vdi vm-assign --explain -n -o json u3
	run python3 -c '
import json, sys
r, = json.loads(sys.argv[1])
assert r["host"] == "h3" and r["chosen"] and r["verdict"] == "has-session", r
assert "least-sessions: h3 (score 0), runner-up h1" in r["why"], r
print("ok")' "$output"
	assert_output ok
	run_vdi vm-assign --explain -o table u3
	assert_line --regexp '^USER +HOST'
	assert_output --partial "already placed: session=$s3"
}

@test "a host not polled within poll_max_age is stale; a down host is down" {
	users 1
	vm-hosts add dead "qemu+unix:///system?socket=$BATS_TEST_TMPDIR/none" --no-check
	vm-hosts poll dead >/dev/null || true
	echo 'poll_max_age = 1s' >"$VDI_CONFIG"
	VDI_TEST_CLOCK=2 run_vdi 4 vm-assign -n u1
	assert_output --partial "1 down, 3 stale"
}

@test "--host: the filters still apply (exit 4 naming the filter) unless --force, which is recorded" {
	users 2
	vm-hosts drain h2
	run_vdi 4 vm-assign --host h2 u1
	assert_output --partial "host h2 fails filter 'draining'"
	run_vdi vm-assign --host h3 u1
	assert_output --regexp $'^u1\th3\t'
	export SUDO_USER=helpdesk7
	run_vdi vm-assign --host h2 --force u2
	assert_output --partial "by force"
	[ "$(sql "select who || ' ' || action from events where object = 'u2' and action like 'session%'")" = "helpdesk7 session-assign-forced" ]
	run_vdi vm-assign --host h2 u2
	assert_output --regexp $'^u2\th2\t'   # its session is there: reconnected, nothing new
	local before
	before=$(vmdb_sum)
	run_vdi 3 vm-assign --host nosuch u2
	assert_output "vm-assign: error: u2: no host 'nosuch'"
	# Asked for another host while it runs: told where it runs, and nothing moves.
	run_vdi 5 vm-assign --host h1 u1
	assert_output --regexp "^vm-assign: error: u1: has session [0-9]+ on h3 already; it is not moved \(vm-migrate --to h1"
	[ "$(vmdb_sum)" = "$before" ]
	run_vdi 2 vm-assign --force u1
}

@test "a user who has a session gets it again and nothing new is reserved" {
	users 1
	run_vdi vm-assign u1
	local first=$output
	local before
	before=$(sql "select sum(sessions) || ' ' || sum(mem_used) from hosts")
	run_vdi vm-assign u1
	[ "$output" = "$first" ]
	[ "$(sql "select sum(sessions) || ' ' || sum(mem_used) from hosts")" = "$before" ]
	[ "$(sql 'select count(*) from sessions')" = 1 ]
}

@test "unknown users are 3, bad names 2, and the others still go through" {
	users 1
	run_vdi 2 vm-assign nobody u1 "bad/name"
	assert_output --partial "user 'nobody' has no user VM"
	assert_line --regexp $'^u1\th1\t'
	run_vdi 3 vm-assign nobody
	run_vdi 2 vm-assign -p fastest u1
}

@test "users from stdin, one line each, as a pipeline" {
	users 3
	run bash -c 'printf "u1\nu2 extra\n\nu3\n" | vm-assign | cut -f1,2'
	assert_success
	assert_output $'u1\th1\nu2\th2\nu3\th3'
}

@test "40 concurrent vm-assign onto room for 30: exactly 30 succeed, 10 exit 4, nothing overcommitted" {
	users 40
	vm-hosts set h1 --max-sessions 10 --cpu-ratio 8
	vm-hosts set h2 --max-sessions 10 --cpu-ratio 8
	vm-hosts set h3 --max-sessions 10 --cpu-ratio 8
	local i pids=()
	for i in $(seq 1 40); do
		vm-assign "u$i" >"$BATS_TEST_TMPDIR/out.$i" 2>&1 &
		pids+=($!)
	done
	local ok=0 full=0 other=0 rc
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[$i]}" || rc=$?
		case $rc in 0) ok=$((ok + 1)) ;; 4) full=$((full + 1)) ;; *) other=$((other + 1)) ;; esac
	done
	echo "ok=$ok full=$full other=$other"
	[ "$ok" = 30 ] && [ "$full" = 10 ] && [ "$other" = 0 ]
	[ "$(sql_list ' ' "select sessions from hosts order by name")" = "10 10 10" ]
	[ "$(sql "select count(*) from host_usage_check where sessions <> sessions_real or mem_used <> mem_used_real or vcpus_used <> vcpus_used_real")" = 0 ]
	[ "$(sql "select count(*) from sessions")" = 30 ]
	[ "$(sql "select count(distinct uservm_id) from sessions")" = 30 ]
}

@test "PostgreSQL restarted during a login storm: each vm-assign is placed or exits 75 in one line; a rerun converges" {
	on_pg || skip "PostgreSQL only"
	users 40
	local h
	for h in h1 h2 h3; do vm-hosts set "$h" --cpu-ratio 64 --ram-ratio 4; done
	local i pids=() rc placed=0 again=() other=0
	for i in $(seq 1 40); do
		vm-assign "u$i" >"$BATS_TEST_TMPDIR/out.$i" 2>&1 &
		pids+=($!)
	done
	runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$VDI_TEST_PG/data" -m fast -w restart \
		>"$BATS_TEST_TMPDIR/restart.log" 2>&1 </dev/null 3>&-
	for i in "${!pids[@]}"; do
		rc=0
		wait "${pids[$i]}" || rc=$?
		case $rc in
		0) placed=$((placed + 1)) ;;
		75)
			again+=("u$((i + 1))")
			[ "$(wc -l <"$BATS_TEST_TMPDIR/out.$((i + 1))")" = 1 ] || fail "u$((i + 1)): $(cat "$BATS_TEST_TMPDIR/out.$((i + 1))")"
			grep -q '^vm-assign: error: .*try again$' "$BATS_TEST_TMPDIR/out.$((i + 1))" ||
				fail "u$((i + 1)): $(cat "$BATS_TEST_TMPDIR/out.$((i + 1))")"
			;;
		*) other=$((other + 1)); cat "$BATS_TEST_TMPDIR/out.$((i + 1))" >&3 ;;
		esac
	done
	echo "placed=$placed again=${#again[@]} other=$other"
	[ "$other" = 0 ]
	# Whatever was refused is placed by its rerun; nobody twice, nothing drifted.
	[ "${#again[@]}" = 0 ] || run_vdi vm-assign "${again[@]}"
	[ "$(sql "select count(*) from sessions")" = 40 ]
	[ "$(sql "select count(distinct uservm_id) from sessions")" = 40 ]
	[ "$(sql "select count(*) from host_usage_check where sessions <> sessions_real or mem_used <> mem_used_real")" = 0 ]
}

@test "vm-assign does not load libvirt" {
	run ldd "$(command -v vm-assign)"
	refute_output --partial libvirt
	refute_output --partial libxml2
}

@test "--explain when no host fits: every host with its verdict, then exit 4" {
	# A user VM that fitted when it was made; the hosts give less now.
	users 1 --mem 1G
	local h
	for h in h1 h2 h3; do mem_cap "$h" $((512 << 20)); done
	run_vdi 4 vm-assign --explain -o tsv u1
	[ "$(grep -c $'^u1\th[123]\t' <<<"$output")" = 3 ]
	[ "$(grep -c $'\tmemory\t' <<<"$output")" = 3 ]
	assert_output --partial "vm-assign: error:"
	run_vdi 4 bash -c "vm-assign --explain -o json u1 2>/dev/null"
	[ "$(jq length <<<"$output")" = 3 ]
	[ "$(jq -r '[.[].verdict] | unique | join(",")' <<<"$output")" = memory ]
	[ "$(sql 'select count(*) from sessions')" = 0 ]
}

@test "a batch that fails for want of VMDB disk: every error line names its user; nothing is half-written" {
	users 3
	# The VMDB alone on a small file system, then filled.
	vmdb_on_small_fs
	vm-ls >/dev/null # its -shm made while there is room, as any earlier command would have
	vmdb_fill
	run_vdi 1 vm-assign u1 u2 u3
	local u
	for u in u1 u2 u3; do
		assert_line --regexp "^vm-assign: error: $u: .*disk full"
	done
	[ "$(grep -c '^vm-assign: error:' <<<"$output")" = 3 ]
	rm "$DBFS/fill"
	assert_equal "$(sql "select count(*) from sessions")" 0
	assert_equal "$(sql "pragma integrity_check")" ok
	# Room again: the same batch goes through.
	run_vdi vm-assign u1 u2 u3
	assert_equal "$(sql "select count(*) from sessions")" 3
}

@test "errors in a batch name their user, even a one-letter user" {
	run_vdi 3 vm-assign a b
	assert_line --index 0 --regexp "^vm-assign: error: .*'a'"
	run_vdi 3 vm-copy --master nope a
	assert_output "vm-copy: error: a: no master 'nope'"
}

#!/usr/bin/env bats
# audit.bats - running a site: the audit trail as a command (vm-log, with
# its filters and -f), its pruning by vm-reap (events_keep), the metrics
# (vdi-db metrics, read by Prometheus' own parser) against the VMDB after a
# storm, a reap, a migration and a refusal, the VMDB's backup taken during
# a storm and restored, then reconciled with the hosts, and entitlements
# (vm-group) with users and groups of the real system (useradd, groupadd;
# removed after each test).

load helpers

setup_file() {
	lab_suite_start 3
}

teardown_file() {
	lab_suite_stop
}

setup() {
	common_setup
	W=$BATS_TEST_TMPDIR
	printf 'domain_type = qemu\nmigrate_unsafe = yes\n' >"$VDI_CONFIG"
	add_lab_hosts --migration-uri tcp://127.0.0.1
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
	seq -f 'u%g' 1 8 | vm-copy -q --master m
}

teardown() {
	local rc=0 u
	stop_pidfile "$W/log.pid"
	for u in "${NSS_USERS[@]}"; do userdel "$u" >/dev/null 2>&1 || true; done
	for u in "${NSS_GROUPS[@]}"; do groupdel "$u" >/dev/null 2>&1 || true; done
	assert_agree || rc=1
	lab_clean
	return $rc
}

NSS_USERS=()
NSS_GROUPS=()

# nss_user NAME [GROUP]: a real user of the system (no home), in GROUP too if given; removed by teardown.
nss_user() {
	NSS_USERS+=("$1")
	useradd -M -s /usr/sbin/nologin ${2:+-G "$2"} "$1"
	NSS_GROUPS+=("$1") # its own group, which useradd makes
}

# nss_group NAME: a real group of the system; removed by teardown.
nss_group() {
	NSS_GROUPS+=("$1")
	groupadd "$1"
}

# cgi USER [BODY]: vm-connect as the web server runs it (GET, or POST with BODY); its answer in $W/cgi.out.
cgi() {
	local -a env=(GATEWAY_INTERFACE=CGI/1.1 REMOTE_USER="$1" VDI_DB="$VDI_DB" VDI_CONFIG="$VDI_CONFIG"
		PATH="$PATH" SCRIPT_NAME=/desktop)
	if [ -n "${2:-}" ]; then
		printf '%s' "$2" | env -i "${env[@]}" REQUEST_METHOD=POST CONTENT_TYPE=application/x-www-form-urlencoded \
			CONTENT_LENGTH=${#2} "$TOP/$O/bin/vm-connect" >"$W/cgi.out" 2>"$W/cgi.err"
	else
		env -i "${env[@]}" REQUEST_METHOD=GET "$TOP/$O/bin/vm-connect" </dev/null >"$W/cgi.out" 2>"$W/cgi.err"
	fi
}

# cgi_token ACTION: the token of the page's form for ACTION, from $W/cgi.out.
cgi_token() {
	grep -o "name=\"action\" value=\"$1\"><input type=\"hidden\" name=\"token\" value=\"[^\"]*\"" \
		"$W/cgi.out" | sed 's/.*value="//; s/"$//'
}

# metrics: the VMDB's metrics as Prometheus' parser reads them (NAME|LABELS|VALUE lines).
metrics() {
	vdi-db metrics >"$W/metrics.prom" && /usr/bin/python3 "$TOP/test/metrics.py" <"$W/metrics.prom"
}

# metric NAME LABELS: one sample's value ("" if absent).
metric() {
	metrics | awk -F'|' -v n="$1" -v l="$2" '$1 == n && $2 == l { print $3 }'
}

@test "vm-log: the events oldest first, filtered by user, host, session, action, program and time" {
	vm-start -q u1 u2 u3
	vm-reap -q --user u2
	run_vdi vm-log --user u2 -o tsv
	[ "$(cut -f4 <<<"$output" | paste -sd' ')" = "uservm-add session-assign session-running session-end" ]
	# Oldest first: the ids go up.
	[ "$(cut -f1 <<<"$output" | sort -n | paste -sd' ')" = "$(cut -f1 <<<"$output" | paste -sd' ')" ]
	s=$(sql "select s.id from sessions s join uservms u on u.id = s.uservm_id where u.username = 'u2'")
	h=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = $s")
	run_vdi vm-log --session "$s" -o tsv
	[ "$(cut -f5 <<<"$output" | sort -u)" = "$s" ]
	[ "$(cut -f6 <<<"$output" | sort -u)" = "$h" ]
	[ "${#lines[@]}" = 3 ]
	# A host's events: its own, and those of the sessions on it.
	run_vdi vm-log --host "$h" -o tsv
	assert_line --partial $'\thost-add\t'
	assert_line --partial $'\tsession-end\t'"$s"$'\t'
	[ "$(cut -f6 <<<"$output" | sort -u)" = "$h" ]
	run_vdi vm-log --action 'session-*' --program vm-reap -o json
	[ "$(jq -r '.[] | "\(.object) \(.action) \(.program)"' <<<"$output")" = "u2 session-end vm-reap" ]
	[[ "$(jq -r '.[0].detail' <<<"$output")" == "session=$s reason=admin"* ]]
	run_vdi vm-log --since 1h --until now -o tsv
	[ "${#lines[@]}" = "$(sql 'select count(*) from events')" ]
	run_vdi vm-log --until 2020-01-01
	assert_output ""
	run_vdi vm-log --last 2 -o tsv
	[ "$(cut -f1 <<<"$output" | paste -sd' ')" = "$(sql 'select id from events order by id desc limit 2' | sort -n | paste -sd' ')" ]
}

@test "vm-log: a hostile detail is escaped in every format; bad filters are refused with exit 2 and one line" {
	# Nothing of ours writes control bytes into an event: a row planted in the VMDB does.
	sql "insert into events (at, who, program, object, action, detail) values
		(1796000000, 'root', 'vm-start', 'u1', 'session-end', 'a' || char(27) || '[2J' || char(10) || 'b' || char(9) || '<i>')" 2>/dev/null ||
		sql "insert into events (at, who, program, object, action, detail) values
		(1796000000, 'root', 'vm-start', 'u1', 'session-end', 'a' || chr(27) || '[2J' || chr(10) || 'b' || chr(9) || '<i>')"
	run_vdi vm-log --user u1 --action session-end -o table
	assert_output --partial 'a?[2J?b?<i>'
	run_vdi vm-log --user u1 --action session-end -o tsv
	assert_output --partial 'a'$'\e''[2J\nb\t<i>'
	[ "${#lines[@]}" = 1 ]
	run_vdi vm-log --user u1 --action session-end -o json
	[ "$(jq -r '.[0].detail' <<<"$output")" = $'a\e[2J\nb\t<i>' ]
	local bad
	for bad in "--user a;b" "--host ../h1" "--session 0" "--session 1x" "--action A*" "--action x;y" "--since yesterday" \
		"--until 2027-02-30" "--last 0" "--program a/b" "u1"; do
		# shellcheck disable=SC2086
		run_vdi 2 vm-log $bad
		[ "${#lines[@]}" -le 2 ] # the error, and "Try 'vm-log --help'."
		assert_line --index 0 --regexp '^vm-log: error: '
	done
	run_vdi 2 vm-log --since 1h --until 2h
	assert_output --partial 'is after --until'
}

@test "vm-log -f: a new event appears within 2 s; it keeps following a vm-start storm, then ends cleanly on SIGTERM" {
	vm-log -f -o json --action 'session-*' </dev/null >"$W/follow.json" 2>"$W/follow.err" 3>&- &
	echo $! >"$W/log.pid"
	sleep 1
	vm-start -q u1
	local i
	for ((i = 0; i < 20; i++)); do
		grep -q '"session-running"' "$W/follow.json" && break
		sleep 0.1
	done
	grep -q '"session-running"' "$W/follow.json"
	# A storm: seven starts at once, each writing its events from its own threads.
	vm-start -q u2 u3 u4 u5 u6 u7 u8
	want=$(sql "select count(*) from events where action like 'session-%'")
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c '"action":"session-' "$W/follow.json")" -ge "$want" ] && break
		sleep 0.1
	done
	kill -TERM "$(cat "$W/log.pid")"
	wait "$(cat "$W/log.pid")"
	rm -f "$W/log.pid"
	# The array is closed: valid JSON, each event once, the same as the VMDB's.
	[ "$(jq -r '.[].id' "$W/follow.json" | sort -n | uniq | wc -l)" = "$want" ]
	[ "$(jq -r '.[].id' "$W/follow.json" | wc -l)" = "$want" ]
	[ "$(jq -r '.[].id' "$W/follow.json" | paste -sd' ')" = "$(sql "select id from events where action like 'session-%' order by id" | paste -sd' ')" ]
	[ ! -s "$W/follow.err" ]
}

@test "events_keep: vm-reap deletes the events older than it; the counters stay; -n deletes nothing; 0 keeps them all" {
	vm-start -q u1
	now=$(date +%s)
	sql "update events set at = $now - 100 * 86400 where object = 'u1'"
	old=$(sql "select count(*) from events where object = 'u1'")
	total=$(sql "select count(*) from events")
	before=$(metric vdi_events_total action=uservm-add)
	[ "$before" = 8 ]
	run_vdi vm-reap -n
	assert_output $'prune\t'"$old events"$'\tolder than 90 days'
	[ "$(sql 'select count(*) from events')" = "$total" ]
	printf 'events_keep = 0\n' >>"$VDI_CONFIG"
	run_vdi vm-reap
	assert_output ""
	[ "$(sql 'select count(*) from events')" = "$total" ]
	printf 'domain_type = qemu\nmigrate_unsafe = yes\nevents_keep = 30d\n' >"$VDI_CONFIG"
	run_vdi vm-reap
	assert_output $'prune\t'"$old events"$'\tolder than 30 days'
	[ "$(sql 'select count(*) from events')" = $((total - old)) ]
	run_vdi vm-log --user u1
	assert_output ""
	[ "$(metric vdi_events_total action=uservm-add)" = "$before" ]
	[ "$(metric vdi_session_starts_total kind=desktop)" = 1 ]
}

@test "metrics: Prometheus text that matches the VMDB after a storm, a refusal, a reap and a migration" {
	vm-start -q u1 u2 u3 u4 u5 u6
	for h in h1 h2 h3; do vm-hosts -q set "$h" --max-sessions 2; done
	run_vdi 4 vm-assign u7
	for h in h1 h2 h3; do vm-hosts -q set "$h" --max-sessions none; done
	vm-reap -q --user u1
	vm-migrate -q u2
	metrics >"$W/samples"
	# Gauges: the rows as they are now.
	[ "$(awk -F'|' '$1 == "vdi_sessions" { n += $3 } END { print n }' "$W/samples")" = \
		"$(sql "select count(*) from sessions where state <> 'ended'")" ]
	for h in h1 h2 h3; do
		grep -qx "vdi_host_sessions|host=$h|$(sql "select sessions from hosts where name = '$h'")" "$W/samples"
		grep -qx "vdi_host_memory_used_bytes|host=$h|$(sql "select mem_used from hosts where name = '$h'")" "$W/samples"
		grep -qx "vdi_host_up|host=$h|1" "$W/samples"
		grep -qx "vdi_host_admin|host=$h,state=active|1" "$W/samples"
	done
	grep -qx "vdi_uservms|state=ready|8" "$W/samples"
	grep -qx "vdi_masters|state=active|1" "$W/samples"
	# Counters: what happened.
	grep -qx "vdi_session_starts_total|kind=desktop|6" "$W/samples"
	grep -qx "vdi_session_ends_total|kind=desktop,reason=admin|1" "$W/samples"
	grep -qx "vdi_placements_total|how=policy|6" "$W/samples"
	grep -qx "vdi_placement_refusals_total|reason=no-capacity|1" "$W/samples"
	grep -qx "vdi_migrations_total|outcome=moved|1" "$W/samples"
	grep -qx "vdi_session_start_seconds_count||6" "$W/samples"
	grep -qx "vdi_session_start_seconds_bucket|le=+Inf|6" "$W/samples"
	# The refusal is in the audit trail too, with its reason.
	run_vdi vm-log --user u7 --action session-refused -o tsv
	assert_output --partial 'full (sessions) for u7'
	# A file for node_exporter's textfile collector: whole, readable by others, never through a link.
	run_vdi vdi-db metrics --write "$W/vdi.prom"
	[ "$(stat -c %a "$W/vdi.prom")" = 644 ]
	/usr/bin/python3 "$TOP/test/metrics.py" <"$W/vdi.prom" >/dev/null
	ln -s /etc/passwd "$W/planted.prom"
	run_vdi 5 vdi-db metrics --write "$W/planted.prom"
	assert_output --partial 'a symlink'
	[ "$(readlink "$W/planted.prom")" = /etc/passwd ]
	[ -z "$(find "$W" -name '.planted.prom.*')" ]
}

@test "backup: taken during a vm-start storm, restored, its counters agree; what ran after it is found by the orphan audit" {
	if on_pg; then
		run_vdi 2 vdi-db backup "$W/b.db"
		assert_output --partial 'pg_dump'
		return 0
	fi
	printf 'start_ttl = 1s\n' >>"$VDI_CONFIG"
	vm-start -q u1 u2
	vm-start -q u3 u4 u5 u6 &
	storm=$!
	sleep 0.3
	run_vdi vdi-db backup "$W/b.db"
	wait "$storm"
	# These two start after the backup was taken: it knows nothing of them.
	vm-start -q u7 u8
	[ "$(stat -c %a "$W/b.db")" = 600 ]
	[ ! -e "$W/b.db-wal" ]
	# The backup is whole: its own counters agree with its own sessions.
	VDI_DB=$W/b.db run_vdi vdi-db check
	run_vdi 5 vdi-db backup "$W/b.db"
	assert_output --partial 'exists'
	# What is not a VMDB is refused, and nothing changes.
	before=$(vmdb_sum)
	printf 'not a database\n' >"$W/foreign"
	run_vdi 2 vdi-db restore "$W/foreign"
	assert_output --partial 'is not a VMDB'
	sqlite3 "$W/other.db" 'create table t (a)'
	run_vdi 2 vdi-db restore "$W/other.db"
	assert_output --partial 'application_id 0'
	run_vdi 2 vdi-db restore -n "$W/foreign"
	run_vdi vdi-db restore -n "$W/b.db"
	assert_output --partial 'is a VMDB that checks'
	[ "$(vmdb_sum)" = "$before" ]
	run_vdi vdi-db restore "$W/b.db"
	assert_output --partial 'restored'
	[ "$(sql 'select count(*) from host_usage_check where sessions <> sessions_real or mem_used <> mem_used_real')" = 0 ]
	[ "$(sql "select count(*) from sessions s join uservms u on u.id = s.uservm_id where u.username in ('u7', 'u8')")" = 0 ]
	# The reconciliation: the sessions the backup caught starting are adopted (past start_ttl: their
	# vm-start is gone, their domains run); the domains no session owns are destroyed, and said so.
	sleep 2
	vm-hosts -q poll
	run_vdi vm-reap --orphans -o tsv
	[ "$(grep -c $'^destroy\t' <<<"$output")" = 2 ]
	assert_line --regexp $'^destroy\tvdi-s[0-9]+-u7\torphan$'
	assert_line --regexp $'^destroy\tvdi-s[0-9]+-u8\torphan$'
	# Then the overlays those domains leave (a domain first, its overlay in a later run).
	run_vdi vm-reap --orphans -o tsv
	[ "$(sql "select count(*) from sessions where state = 'running'")" = 6 ]
	assert_agree
}

@test "entitlements: a member of staff sees and gets office but not dev; a user in no group gets nothing; groups from real NSS" {
	nss_group vdit_staff
	nss_user vdit_ann vdit_staff
	nss_user vdit_cid vdit_staff
	nss_user vdit_dan vdit_staff
	nss_user vdit_bob
	vm-master -q add office --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-master -q add dev --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master office vdit_ann vdit_bob
	vm-copy -q --master dev vdit_cid
	# No grant yet: every user may use every master, as before.
	run_vdi vm-assign -n vdit_cid vdit_bob
	run_vdi vm-group grant vdit_staff office
	run_vdi vm-group list -o tsv
	assert_output $'vdit_staff\toffice\t0\t\t0\t'
	run_vdi vm-group check vdit_ann -o tsv
	assert_line $'vdit_ann\tvdit_ann,vdit_staff\toffice\t1\tvdit_staff\tvdit_ann may use office through group vdit_staff (no limits)'
	assert_line --regexp $'^vdit_ann\tvdit_ann,vdit_staff\tdev\t0\t\tnone of'
	run_vdi 5 vm-group check vdit_ann dev
	# vm-assign: office for ann (charged to staff, explained); dev for cid and anything for bob refused, in words.
	run_vdi vm-assign --explain vdit_ann
	assert_output --partial 'vm-assign: vdit_ann: vdit_ann may use office through group vdit_staff (no limits)'
	run_vdi vm-assign vdit_ann
	[ "$(sql "select s.grp from sessions s join uservms u on u.id = s.uservm_id where u.username = 'vdit_ann'")" = vdit_staff ]
	run_vdi 5 vm-assign vdit_cid
	assert_output "vm-assign: error: vdit_cid: none of vdit_cid's groups (vdit_cid, vdit_staff) may use master dev (vm-group grant GROUP dev)"
	run_vdi 5 vm-assign vdit_bob
	assert_output --partial "none of vdit_bob's groups (vdit_bob) may use master office"
	[ "$(sql "select count(*) from sessions")" = 1 ]
	# u1 has a user VM but the system does not know u1: no groups, nothing.
	run_vdi 5 vm-assign u1
	assert_output "vm-assign: error: u1: u1 is in no group the system knows: no master is granted to them (vm-group)"
	# The page offers dan (staff, no desktop yet) office only, and refuses dev with a 403 in words.
	cgi vdit_dan
	grep -q '<option value="office">' "$W/cgi.out"
	! grep -q '<option value="dev">' "$W/cgi.out"
	cgi vdit_dan "action=request&token=$(cgi_token request)&master=dev&mem=&disk="
	grep -q $'^Status: 403 Forbidden\r' "$W/cgi.out"
	grep -q 'none of your groups has it' "$W/cgi.out"
	# A user in no group: no system offered, in words.
	nss_user vdit_eve
	cgi vdit_eve
	grep -q 'id="no-masters"' "$W/cgi.out"
	! grep -q '<option' "$W/cgi.out"
	# A request made while the grant stood is turned down at approval once it is revoked.
	cgi vdit_dan
	cgi vdit_dan "action=request&token=$(cgi_token request)&master=office&mem=&disk="
	grep -q $'^Status: 303' "$W/cgi.out"
	run_vdi vm-group revoke vdit_staff office
	vm-group -q grant vdit_staff dev
	run_vdi 5 vm-copy --requests --approve vdit_dan
	[ "$(sql "select state from requests where username = 'vdit_dan'")" = rejected ]
	run_vdi vm-log --user vdit_staff -o tsv
	[ "$(cut -f4 <<<"$output" | paste -sd' ')" = "group-grant group-revoke group-grant" ]
	# The running desktop of a revoked grant is left alone.
	[ "$(sql "select state from sessions where grp = 'vdit_staff'")" = assigned ]
	# Hostile group names are refused before anything is written.
	run_vdi 2 vm-group grant $'bad\x1bname' office
	run_vdi 2 vm-group grant 'a,b' office
	run_vdi 2 vm-group limit -x --sessions 1
}

@test "entitlements: a group's cap of 2 sessions refuses the third with exit 4 (and a 503 in words), also when they race" {
	nss_group vdit_staff
	local u
	for u in vdit_ann vdit_bob vdit_cid vdit_dan; do nss_user "$u" vdit_staff; done
	vm-master -q add office --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master office vdit_ann vdit_bob vdit_cid vdit_dan
	vm-group -q grant vdit_staff office
	run_vdi vm-group limit vdit_staff --sessions 2 --mem 1G
	# Four placements at once: two win, two are refused with the group's words.
	for u in vdit_ann vdit_bob vdit_cid vdit_dan; do
		vm-assign -q "$u" >"$W/$u.out" 2>"$W/$u.err" &
	done
	wait || true
	[ "$(sql "select count(*) from sessions where state <> 'ended' and grp = 'vdit_staff'")" = 2 ]
	[ "$(cat "$W"/vdit_*.err | grep -c 'group vdit_staff holds 2 of its 2 sessions')" = 2 ]
	run_vdi vm-group list -o table
	assert_line --regexp '^vdit_staff +office +2/2 +128M/1G'
	placed=$(sql "select u.username from sessions s join uservms u on u.id = s.uservm_id where s.state <> 'ended' order by 1" | head -1)
	waiting=$(sql "select username from uservms where username like 'vdit_%' and id not in (select uservm_id from sessions) order by 1" | head -1)
	run_vdi 4 vm-assign "$waiting"
	assert_output "vm-assign: error: $waiting: group vdit_staff holds 2 of its 2 sessions for $waiting (master office); try again when a desktop of the group ends"
	# The page: a 503 with words and a Retry-After.
	cgi "$waiting"
	cgi "$waiting" "action=connect&token=$(cgi_token connect)"
	grep -q $'^Status: 503 Service Unavailable\r' "$W/cgi.out"
	grep -q '^Retry-After: 60' "$W/cgi.out"
	grep -q 'Your group has all the desktops it may have running at once' "$W/cgi.out"
	[ "$(metric vdi_placement_refusals_total reason=group-limit)" -ge 3 ]
	# One ends: the group has room again.
	vm-reap -q --user "$placed"
	run_vdi vm-assign "$waiting"
	# The memory cap: 64M desktops, 100M for the group: one fits, the second does not.
	vm-group -q limit vdit_staff --sessions none --mem 100M
	vm-reap -q --user "$waiting"
	run_vdi 4 vm-assign "$placed"
	assert_output --partial 'of its 100M of memory'
}

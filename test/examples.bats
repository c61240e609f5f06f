#!/usr/bin/env bats
# examples.bats - every block of every man page's EXAMPLES, run as written in
# the lab, so that an example can never rot again.
#
# Only what names the world outside the lab is replaced (ex_sub): the hosts'
# names and URIs by the lab's, https://images.example... by a real HTTP server on
# 127.0.0.1, /tmp and /srv by the test's folder, /etc/vdi/vdi.conf by the
# test's config; a crontab line runs its command.  What cannot run here
# (systemd, a web server's configuration, a second PostgreSQL server, an
# interactive viewer) is listed with its reason and where it is tested.  Each
# page's count of blocks is checked: a new example fails until it runs here
# or is listed.

load helpers

setup_file() {
	guest_image || return 1
	lab_suite_start 3
}

teardown_file() {
	lab_suite_stop
}

setup() {
	common_setup
	W=$BATS_TEST_TMPDIR
	mkdir -p "$W/tmp" "$W/srv/vv" "$W/srv/rdp" "$W/srv/images" "$W/srv/vdi" "$W/www"
	printf 'domain_type = qemu\nmigrate_unsafe = yes\nhost_log_dir = %s/%%h/log/qemu\n' "$LAB" >"$VDI_CONFIG"
	EX_SED=()
}

teardown() {
	local rc=0
	dump_logs_on_failure "$W/www/web.log"
	stop_pidfile "$W/www/web.pid"
	stop_pidfile "$W/watch.pid"
	stop_pidfile "$W/console.pid"
	# A lab an example started (vdi-lab.1, vm-hosts.1, vdi-tools.7), with any host it stopped resumed.
	if [ -d "$W/tmp/lab" ]; then
		for p in "$W"/tmp/lab/h*/libvirtd.pid; do kill -CONT "$(cat "$p")" 2>/dev/null || true; done
		vdi-lab stop "$W/tmp/lab" >/dev/null 2>&1 || true
	fi
	# The groups vm-group(1)'s example made on the system.
	groupdel vdix_staff >/dev/null 2>&1 || true
	groupdel vdix_devs >/dev/null 2>&1 || true
	assert_agree || rc=1
	lab_clean
	return $rc
}

# examples PAGE: the literal blocks of PAGE's EXAMPLES, NUL-terminated, mandoc's escapes undone.
examples() {
	awk '/^\.Sh EXAMPLES/ { p = 1; next } /^\.Sh / { p = 0 }
		p && /^\.Bd -literal/ { b = 1; next } p && b && /^\.Ed/ { b = 0; printf "%c", 0; next }
		p && b { print }' "$TOP/man/$1" | sed -e 's/\\e/\\/g' -e 's/\\&//g'
}

# ex_sub: the lab's names for the world's, on stdin.
ex_sub() {
	# The folders first: the names put in after them are paths under /tmp themselves.
	sed -e "s#/tmp\\([/ ]\\|\$\\)#$W/tmp\\1#g" -e "s|/srv/|$W/srv/|g" \
		-e "s|qemu+ssh://root@hv1/system|$(lab_uri h1)|g" \
		-e "s|qemu+ssh://root@hv2/system|$(lab_uri h2)|g" \
		-e "s|qemu:///system|$(lab_uri h1)|g" -e 's/\bhv\([0-9]\)\b/h\1/g' \
		-e "s|https://images\.example[a-z.]*/|http://127.0.0.1:${WEB_PORT:-0}/|g" \
		-e "s|/etc/vdi/vdi.conf|$VDI_CONFIG|g" \
		-e 's/^\(\*[^ ]* \)\{5\}\(root \)\{0,1\}//' \
		"${EX_SED[@]/#/-e}"
}

# run_examples PAGE COUNT [N:REASON]...: run PAGE's blocks in order in $W, but those
# numbered (from 1) with a reason; PAGE must have COUNT blocks.  A function
# ex_before_N, if the test defines one, runs before block N.
run_examples() {
	local page=$1 count=$2 i=0 block skip reason
	shift 2
	local -a blocks
	mapfile -d '' blocks < <(examples "$page")
	[ "${#blocks[@]}" = "$count" ] ||
		fail "$page has ${#blocks[@]} EXAMPLES blocks, not $count: run the new one here, or list why it cannot run"
	for block in "${blocks[@]}"; do
		i=$((i + 1))
		reason=
		for skip in "$@"; do
			[ "${skip%%:*}" = "$i" ] && reason=${skip#*:}
		done
		if [ -n "$reason" ]; then
			echo "# $page example $i not run here: $reason" >&3
			continue
		fi
		# What the page's words before the block say is so (a failed user VM, a dead host).
		if declare -F "ex_before_$i" >/dev/null; then
			"ex_before_$i"
		fi
		block=$(ex_sub <<<"$block")
		run bash -eo pipefail -c "cd '$W' && $block"
		if [ "$status" -ne 0 ]; then
			printf '# %s example %d failed (exit %d):\n%s\n# output:\n%s\n' "$page" "$i" "$status" \
				"$block" "$output" | sed 's/^/#   /' >&3
			return 1
		fi
		EX_OUT[i]=$output
	done
}

# serve_images: the masters the pages download, on a real HTTP server.
serve_images() {
	cp "$GUEST" "$W/www/win11.qcow2"
	sha256sum "$W/www/win11.qcow2" | cut -d' ' -f1 >"$W/www/win11.qcow2.sha256"
	httpd_start "$W/www" web
}

@test "mkguest(1): the lab's guest made, a master of it, a user VM prepared by its first boot, a session" {
	add_lab_hosts --network vdi
	run_examples mkguest.1 1
	[ -s "$W/tmp/alice.vv" ]
	assert_equal "$(sql "select state from uservms where username = 'alice'")" ready
}

@test "vdi-tools(7): the overview's session from hosts to reaping, and the lab" {
	serve_images
	printf 'user,name\nalice,Alice A.\nbob,Bob B.\n' >"$W/staff.csv"
	# The image served is the lab's guest, a Linux: its master gets the linux profile.
	EX_SED=('s/--os windows$/--os windows --profile linux/')
	run_examples vdi-tools.7 2 \
		"1:its last line is systemctl (systemd units are not installed in the lab); the rest runs below"
	# The first block without its systemctl line.
	local block
	block=$(examples vdi-tools.7 | tr '\0' '\n' | sed -n '/^vm-hosts add hv1/,/^vm-reap/p' | ex_sub)
	run bash -eo pipefail -c "cd '$W' && $block"
	[ "$status" -eq 0 ] || { echo "$output" >&3; false; }
	assert_equal "$(sql_list , "select username || ':' || state from uservms order by username")" "alice:ready,bob:ready"
	[ -s "$W/srv/vv/alice.vv" ]
}

@test "vdi-lab(1): a lab started, its pool listed, its status, stopped" {
	run_examples vdi-lab.1 1
	[ ! -e "$W/tmp/lab/h1/libvirtd.pid" ] || ! kill -0 "$(cat "$W/tmp/lab/h1/libvirtd.pid")" 2>/dev/null
}

@test "vdi.conf(5): the sample file loads, and a setting for one command" {
	add_lab_hosts --network vdi
	run_examples vdi.conf.5 2 "1:a file's content, not a command: written as the config and read below"
	examples vdi.conf.5 | tr '\0' '\n' | sed -n '/^# \/etc\/vdi\/vdi.conf/,/^policy/p' | ex_sub >"$W/sample.conf"
	VDI_DB= VDI_CONFIG=$W/sample.conf run_vdi vm-ls
	[ -s "$W/srv/vdi/vdi.db" ]
}

@test "vdi-db(1): check the counters, a backup restored and reconciled, the metrics from cron" {
	add_lab_hosts --network vdi
	run_examples vdi-db.1 4 "1:systemctl and a PostgreSQL site: vmdb.bats copies to a real PostgreSQL and checks it"
	[ -s "$W/tmp/vdi.prom" ]
	assert_line --partial 'vdi_host_memory_free_bytes{host="h1"}'
}

@test "vm-group(1): masters granted to groups of the system, a limit, a user checked" {
	add_lab_hosts
	vm-master -q add office --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-master -q add dev --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	# The system's groups are the machine's: the example's get names of their own, removed by teardown.
	EX_SED=('s/\bstaff\b/vdix_staff/g' 's/\bdevelopers\b/vdix_devs/g')
	run_examples vm-group.1 2
	assert_output --partial 'alice may not use dev'
	[ "$(sql "select count(*) from grants")" = 3 ]
	[ "$(sql "select max_sessions from group_limits where grp = 'vdix_staff'")" = 40 ]
}

@test "vm-log(1): the trail of a user's desktop, by time and action, by host, as TSV" {
	add_lab_hosts
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice
	vm-start -q alice
	vm-reap -q --user alice
	run_examples vm-log.1 3 "3:follows until interrupted: audit.bats follows a vm-start storm with it"
	[[ "${EX_OUT[1]}" == *$'\tsession-end\t'* ]]
}

@test "vm-hosts(1): a lab added, polled from cron, maintenance, drain, a dead host fenced and removed, a query" {
	# "If h3 dies": its libvirtd stops answering.
	ex_before_5() { kill -STOP "$(cat "$W/tmp/lab/h3/libvirtd.pid")"; }
	printf 'fence_timeout = 5s\npoll_timeout = 1s\n' >>"$VDI_CONFIG"
	run_examples vm-hosts.1 6
	assert_equal "$(sql_list , "select name from hosts order by name")" "h1,h2"
	assert_equal "$(sql "select admin from hosts where name = 'h2'")" draining
}

@test "vm-master(1): import over HTTP with its checksum, a local image, a device profile, a new version, its roll back" {
	serve_images
	cp "$IMG/m.qcow2" "$W/srv/images/w11.qcow2"
	cp "$IMG/m.qcow2" "$W/srv/images/win11-2027.qcow2"
	add_lab_hosts --network vdi
	run_examples vm-master.1 5
	# win11-2027 replaced win11, then the roll back made win11 the master again.
	assert_equal "$(sql_list , "select name || ':' || state from masters order by name")" \
		"tiny:active,w11:active,win11:active,win11-2027:retired"
}

@test "vm-copy(1): sized, a class from a CSV with a header, a CSV request, a batch, a retry, warm, a home disk, the update roll, thin" {
	# 8G on hosts of 7G: the lab's hosts may give out twice their memory.
	add_lab_hosts --network vdi --ram-ratio 2
	vm-master -q add win11 --prepare none --image "$IMG/m.qcow2" --os win11 --app office --app chrome
	vm-master -q add debian12 --image "$GUEST" --os linux --mem 192M
	printf 'user,email\nst1,st1@school\nst2,st2@school\n' >"$W/students.csv"
	# "Retry a user VM whose first boot failed": ben's did.
	ex_before_5() { sql "update uservms set state = 'failed' where username = 'ben'"; }
	run_examples vm-copy.1 9
	assert_equal "$(sql_list , "select username from uservms order by username")" "alice,ann,ben,cat,dan,st1,st2,u1"
	assert_equal "$(sql "select size from homes where username = 'dan'")" $((40 << 30))
	assert_output --partial "backing file: "
}

@test "vm-assign(1): a pipeline, an explanation, the helpdesk's choice, a storm from a file" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-hosts -q drain h2
	vm-copy -q --master m alice bob carol dave erin
	printf 'dave\nerin\n' >"$W/class.txt"
	run_examples vm-assign.1 4
	assert_equal "$(sql "select h.name from sessions s join hosts h on h.id = s.host_id join uservms u on
		u.id = s.uservm_id where u.username = 'carol'")" h2
	[ "$(wc -l <"$W/placements.tsv")" = 2 ]
}

@test "vm-start(1): started from a pipeline, a password for the helpdesk, an assigned session, an RDP file" {
	add_lab_hosts --network vdi
	# The real guest, as an RDP file needs the guest's address (from its DHCP lease).
	vm-master -q add m --prepare none --image "$GUEST" --os linux --mem 192M --rdp
	vm-copy -q --master m alice bob carol dave
	vm-start -q carol
	local id
	id=$(vm-assign dave | cut -f3)
	EX_SED=('/^remote-viewer /d' "s/--session 42/--session $id/" 's/ && xfreerdp .*//')
	run_examples vm-start.1 2
	[ -s "$W/srv/vv/alice.vv" ] && [ -s "$W/srv/vv/bob.vv" ]
	assert_equal "$(sql "select state from sessions where id = $id")" running
}

@test "vm-ls(1): where alice is, a host's sessions, the ended ones counted" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice bob
	vm-assign -q --host h2 bob >/dev/null
	vm-start -q alice bob
	vm-reap -q --user alice
	vm-start -q alice
	run_examples vm-ls.1 1
	assert_equal "$(tail -n 1 <<<"${EX_OUT[1]}")" 1
}

@test "vm-migrate(1): a desktop moved, a plan, two sessions to h2 with their seconds, a host emptied from a pipe" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m ann bob cat dan
	vm-assign -q --host h1 ann bob cat dan >/dev/null
	vm-start -q ann bob cat dan
	local s1 s2
	s1=$(sql "select s.id from sessions s join uservms u on u.id = s.uservm_id where u.username = 'bob'")
	s2=$(sql "select s.id from sessions s join uservms u on u.id = s.uservm_id where u.username = 'cat'")
	EX_SED=("s/--session 41 --session 42/--session $s1 --session $s2/")
	run_examples vm-migrate.1 4
	assert_equal "$(sql "select count(*) from sessions where host_id = 1 and state = 'running'")" 0
}

@test "vm-reap(1): from cron, a dry run, alice ended by hand, the long ones and the orphans" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice
	vm-start -q alice
	run_examples vm-reap.1 3
	assert_equal "$(sql "select reason from sessions")" admin
}

@test "vm-rebalance(1): an explanation, from cron, a run with a threshold into jq" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m u1 u2 u3 u4 u5 u6
	vm-assign -q --host h1 u1 u2 u3 u4 u5 u6 >/dev/null
	vm-start -q u1 u2 u3 u4 u5 u6
	vm-hosts -q poll
	run_examples vm-rebalance.1 3
	[ "$(sql "select sessions from hosts where name = 'h1'")" -lt 6 ]
}

@test "vm-connect(1): the CGI asked by hand" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice
	run_examples vm-connect.1 4 \
		"1:lighttpd's configuration: connect.bats runs lighttpd with these settings" \
		"2:a second web server's configuration: the lab serves the page with lighttpd only (connect.bats)" \
		"3:a third web server's configuration: the lab serves the page with lighttpd only (connect.bats)"
	assert_equal "${EX_OUT[4]}" '<p id="state" class="state">Your desktop is ready to start.</p>'
}

@test "vm-watch(1): a watcher beside a listing" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice
	vm-start -q alice
	# Example 2 is a daemon: started as written, stopped by its pid once it watches.
	local block
	block=$(examples vm-watch.1 | tr '\0' '\n' | grep '^vm-watch --rescan')
	bash -c "exec $block" </dev/null >"$W/watch.log" 2>&1 3>&- &
	echo $! >"$W/watch.pid"
	wait_sql "select count(*) from hosts where watch_since is null" 0 10
	run_examples vm-watch.1 4 \
		"1:installs and starts the systemd unit (systemd is not in the lab): connect.bats runs vm-watch" \
		"2:the daemon itself: started above, as written" \
		"3:a standby on two PostgreSQL servers: connect.bats runs vm-watch --standby"
	assert_output --regexp 'VIEWER'
	assert_output --partial 'none-yet'
}

@test "vm-console(1): a relay in the foreground, and who has a browser console" {
	add_lab_hosts --network vdi
	vm-master -q add m --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M
	vm-copy -q --master m alice
	vm-start -q alice
	# Example 5 is a daemon: started as written, stopped by its pid once it listens.
	local block i
	block=$(examples vm-console.1 | tr '\0' '\n' | grep '^vm-console --socket' | ex_sub)
	bash -c "exec $block" </dev/null >"$W/console.log" 2>&1 3>&- &
	echo $! >"$W/console.pid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$W/tmp/console.sock" ] && break
		sleep 0.05
	done
	[ -S "$W/tmp/console.sock" ]
	run_examples vm-console.1 6 \
		"1:installs and starts the systemd unit (systemd is not in the lab): console.bats runs vm-console" \
		"2:lighttpd's configuration: console.bats runs lighttpd with these settings" \
		"3:nginx's configuration: the lab serves the page with lighttpd only (console.bats)" \
		"4:Apache's configuration: the lab serves the page with lighttpd only (console.bats)" \
		"5:the daemon itself: started above, as written"
	stop_pidfile "$W/console.pid"
	grep -q 'listening on' "$W/console.log"
}

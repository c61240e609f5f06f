#!/usr/bin/env bats
# warm.bats - warm desktops with the lab's real guest: a user VM's booted
# memory saved once (a warm build), each session restored from it, the
# fallback to a boot, what invalidates an image, kills at every step, and a
# restored session that moves.

load helpers

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
	# TCG; the guest's own ready line says its desktop is up; its logs are read where the lab keeps them.
	cat >"$VDI_CONFIG" <<-EOF
	domain_type = qemu
	host_log_dir = $LAB/%h/log/qemu
	warm = yes
	warm_ready = vdi-guest: ready
	warm_settle = 0s
	warm_timeout = 2m
	migrate_unsafe = yes
	EOF
	add_lab_hosts --network vdi
	# A master that does not prepare itself: its user VMs are ready at once, and the guest's
	# first-boot steps run in the warm build (test 1 has a master that prepares, as sites do).
	vm-master -q add guest --image "$GUEST" --os linux --mem 192M --prepare none
}

teardown() {
	local rc=0
	[ -f "$W/watch.pid" ] && stop_pidfile "$W/watch.pid"
	assert_agree || rc=1
	lab_clean
	return $rc
}

# warm_of USER: the build whose image USER's user VM has ("" when cold).
warm_of() {
	sql "select coalesce(warm, '') from uservms where username = '$1'"
}

# domain_console USER: the serial console log of USER's running session's domain.
domain_console() {
	local dom host
	dom=$(sql "select s.domain from sessions s join uservms u on u.id = s.uservm_id
		where u.username = '$1' and s.state = 'running'")
	host=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id join uservms u on
		u.id = s.uservm_id where u.username = '$1' and s.state = 'running'")
	[ -n "$dom" ] && printf '%s\n' "$LAB/$host/log/qemu/$dom.console.log"
}

# wait_file_has FILE TEXT: until FILE holds TEXT (90 s at most).
wait_file_has() {
	local i
	for ((i = 0; i < 360; i++)); do
		grep -qF "$2" "$1" 2>/dev/null && return 0
		sleep 0.25
	done
	echo "# no '$2' in $1" >&3
	return 1
}

# wait_resumed USER: until USER's running domain says it resumed; sets line.
wait_resumed() {
	local i f
	for ((i = 0; i < 120; i++)); do
		f=$(domain_console "$1") && line=$(grep -m1 "vdi-guest: resumed" "$f" 2>/dev/null) && return 0
		sleep 0.25
	done
	echo "# no resumed line on ${f:-no console}:" >&3
	[ -n "${f:-}" ] && sed 's/^/#   /' "$f" >&3
	return 1
}

@test "a user VM is made warm after its first boot; a session restores it: resumed, not booted, with the user's name, address and clock and a new password" {
	vm-master -q add prepared --image "$GUEST" --os linux --mem 192M
	run_vdi vm-copy --master prepared alice
	assert_output --partial "alice: warm (an image of"
	b=$(warm_of alice)
	[ -n "$b" ]
	# The build was a session of kind warm, placed like a desktop, ended saved; its files are in the pool.
	assert_equal "$(sql "select kind || ' ' || state || ' ' || reason || ' ' || domain || ' ' || overlay from sessions where id = $b")" \
		"warm ended saved vdi-w$b-alice w$b-alice.qcow2"
	[ -s "$LAB/pool/w$b-alice.save" ]
	assert_equal "$(qemu-img info --output=json "$LAB/pool/w$b-alice.qcow2" | jq -r '."backing-filename"' | xargs basename)" user-alice.qcow2
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].warm' <<<"$output")" warm
	assert_equal "$(sql "select count(*) from hosts where sessions > 0")" 0
	# The address the user VM's MAC leases, as its first boot printed it.
	ip=$(sed -n 's/.*vdi-guest: ready hostname=alice ip=\([0-9.]*\).*/\1/p' "$(console_of alice)" | head -n 1)
	[ -n "$ip" ]
	old=$(sql "select display_password from sessions where id = $b")
	# Time passes between the save and the user's click: the clock must catch up.
	sleep 3
	run_vdi vm-start -o json alice
	sid=$(jq -r '.[0].session' <<<"$output")
	assert_equal "$(sql "select domain || ' ' || warm from sessions where id = $sid")" "vdi-w$b-alice $b"
	run_vdi vm-ls --sessions -o json alice
	assert_equal "$(jq -r '.[0].start' <<<"$output")" restored
	wait_resumed alice
	before=$(date +%s)
	# Resumed, not booted: the console of this run says nothing of a boot.
	run cat "$(domain_console alice)"
	refute_output --partial "ready hostname"
	refute_output --partial "already applied"
	refute_output --partial "Linux version"
	[[ $line =~ resumed\ hostname=alice\ ip=$ip\ clock_step=([0-9]+)s\ time=([0-9]+) ]]
	step=${BASH_REMATCH[1]} gtime=${BASH_REMATCH[2]}
	[ "$step" -ge 2 ]
	[ $((gtime - before)) -le 5 ] && [ $((before - gtime)) -le 5 ]
	# Same MAC (hence the address), a new display password: the one the build had is gone.
	dom=vdi-w$b-alice
	host=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = $sid")
	xml=$(virsh -q -c "$(lab_uri "$host")" dumpxml --security-info "$dom")
	grep -q "<mac address='02:56:44:00:00:01'/>" <<<"$xml"
	new=$(sql "select display_password from sessions where id = $sid")
	[ -n "$new" ] && [ "$new" != "$old" ]
	grep -q "passwd='$new'" <<<"$xml"
	[[ $xml != *"passwd='$old'"* ]]
	# The browser console's display came in the image (the build had one), with this session's password.
	vnc=$(sql "select console_password || ' ' || console_port from sessions where id = $sid")
	grep -q "<graphics type='vnc' port='${vnc#* }' autoport='yes' listen='[0-9.]*' passwd='${vnc%% *}'" <<<"$xml"
	grep -q "<source file='$LAB/pool/s$sid-alice.qcow2'" <<<"$xml"
	run_vdi vm-log --session "$sid" -o tsv
	assert_output --partial "domain=vdi-w$b-alice port="
	assert_output --partial " restored"
}

@test "a restored session's writes go with it; the layer stays as saved and the next session restores the same state" {
	vm-copy -q --master guest alice
	b=$(warm_of alice)
	sum=$(sha256sum "$LAB/pool/w$b-alice.qcow2" | cut -d' ' -f1)
	for i in 1 2; do
		run_vdi vm-start -o json alice
		sid=$(jq -r '.[0].session' <<<"$output")
		wait_resumed alice
		[ -s "$LAB/pool/s$sid-alice.qcow2" ]
		host=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = $sid")
		# The user logs off: the power button, as on a booted desktop.
		virsh -q -c "$(lab_uri "$host")" shutdown "vdi-w$b-alice" >/dev/null
		wait_domain_gone "$host" "vdi-w$b-alice"
		run_vdi vm-reap -q
		assert_equal "$(sql "select state || ' ' || reason from sessions where id = $sid")" "ended poweroff"
		[ ! -e "$LAB/pool/s$sid-alice.qcow2" ]
		assert_equal "$(sha256sum "$LAB/pool/w$b-alice.qcow2" | cut -d' ' -f1)" "$sum"
		assert_equal "$(warm_of alice)" "$b"
	done
	assert_equal "$(sql "select count(*) from sessions where kind = 'desktop' and warm = $b")" 2
}

@test "an image deleted, truncated or of another user VM: the session boots instead, with one warning and an event; the next build makes it warm again" {
	vm-copy -q --master guest alice bob
	bw=$(warm_of bob)
	for how in deleted truncated other; do
		b=$(warm_of alice)
		[ -n "$b" ]
		case $how in
		deleted) rm -f "$LAB/pool/w$b-alice.save" ;;
		truncated) truncate -s 4M "$LAB/pool/w$b-alice.save" ;;
		other) cp "$LAB/pool/w$bw-bob.save" "$LAB/pool/w$b-alice.save" ;;
		esac
		run vm-start alice
		assert_success
		assert_equal "$(grep -c 'warning' <<<"$output")" 1
		assert_output --regexp "vm-start: warning: alice: restoring its warm image failed; it boots instead"
		sid=$(sql "select id from sessions where state = 'running' and kind = 'desktop'")
		# A boot: its console shows the boot (once is enough to see), the session says so, the user VM is cold.
		[ "$how" != deleted ] || wait_file_has "$(domain_console alice)" "vdi-guest: ready hostname=alice"
		assert_equal "$(sql "select coalesce(warm, 'booted') from sessions where id = $sid")" booted
		assert_equal "$(warm_of alice)" ""
		assert_equal "$(sql "select count(*) from events where action = 'session-warm-fallback' and session_id = $sid")" 1
		# Nothing to build while the desktop runs; after it, the cron line builds it.
		run vm-copy --warm alice
		assert_failure 5
		assert_output --partial "has a session ($sid); a warm build waits until it ends"
		run_vdi vm-reap -q --session "$sid"
		run_vdi vm-copy --warm --all -o tsv
		assert_output --regexp "^alice	warm	[0-9]+	[0-9]+$"
		[ "$(warm_of alice)" -gt "$b" ]
		# The old image's files are gone (nothing stood on them).
		[ ! -e "$LAB/pool/w$b-alice.qcow2" ] && [ ! -e "$LAB/pool/w$b-alice.save" ]
	done
	# The metrics count the fallbacks, and the builds among the placements.
	run_vdi vdi-db metrics
	assert_line "vdi_warm_fallbacks_total 3"
	assert_line 'vdi_placements_total{how="warm"} 5'
}

@test "a retired master, vm-copy --rm and the orphan audit take warm files; a planted image is refused and left alone" {
	vm-copy -q --master guest alice bob
	a=$(warm_of alice) b=$(warm_of bob)
	# A file planted at the name of the next build's image: that build fails, the file stays.
	next=$(($(sql "select max(id) from sessions") + 1))
	echo planted >"$W/target"
	ln -s "$W/target" "$LAB/pool/w$next-alice.save"
	run vm-copy --warm alice
	assert_failure 5
	assert_output --partial "w$next-alice.save is in pool vdi already, made by no warm build; left alone"
	[ -L "$LAB/pool/w$next-alice.save" ]
	assert_equal "$(cat "$W/target")" planted
	assert_equal "$(warm_of alice)" "$a"
	[ ! -e "$LAB/pool/w$next-alice.qcow2" ]
	rm -f "$LAB/pool/w$next-alice.save"
	# vm-copy --rm deletes the user VM's image with it.
	run_vdi vm-copy --rm bob
	[ ! -e "$LAB/pool/w$b-bob.save" ] && [ ! -e "$LAB/pool/w$b-bob.qcow2" ]
	# A retired master: its user VMs are cold; vm-reap --orphans deletes the files.
	vm-master -q retire guest
	assert_equal "$(warm_of alice)" ""
	touch "$LAB/pool/w999-nobody.save"
	run_vdi vm-reap --orphans
	assert_output --partial "w$a-alice.save"
	assert_output --partial "w999-nobody.save"
	[ ! -e "$LAB/pool/w$a-alice.save" ] && [ ! -e "$LAB/pool/w$a-alice.qcow2" ]
}

@test "killed at each step of a warm build, the next runs converge: nothing left that nothing owns, then warm" {
	printf 'start_ttl = 1s\nstop_ttl = 1s\n' >>"$VDI_CONFIG"
	printf 'warm = no\n' >>"$VDI_CONFIG"
	vm-copy -q --master guest alice
	assert_equal "$(warm_of alice)" ""
	for step in overlay domain warm-save warm-saved; do
		run env VDI_TEST_STOP_AT=$step vm-copy --warm alice
		[ "$status" -eq 137 ]
		sleep 2.1
		run_vdi vm-reap
		assert_agree
		assert_equal "$(warm_of alice)" ""
		assert_equal "$(sql "select count(*) from sessions where state <> 'ended'")" 0
		run running_domains h1
		refute_output --partial vdi-
		run running_domains h2
		refute_output --partial vdi-
		[ -z "$(ls "$LAB"/pool/w[0-9]* 2>/dev/null)" ]
	done
	run_vdi vm-copy --warm alice
	[ -n "$(warm_of alice)" ]
}

@test "killed during a warm start, the next run adopts the restored domain; vm-reap ends what never ran" {
	printf 'start_ttl = 1s\n' >>"$VDI_CONFIG"
	vm-copy -q --master guest alice
	b=$(warm_of alice)
	run env VDI_TEST_STOP_AT=domain vm-start alice
	[ "$status" -eq 137 ]
	# The rerun takes the dead starter's claim and adopts the domain it restored.
	run_vdi vm-start -o json alice
	sid=$(jq -r '.[0].session' <<<"$output")
	assert_equal "$(sql "select state || ' ' || warm from sessions where id = $sid")" "running $b"
	wait_resumed alice
	run_vdi vm-reap -q --session "$sid"
	run env VDI_TEST_STOP_AT=overlay vm-start alice
	[ "$status" -eq 137 ]
	sleep 2.1
	run_vdi vm-reap
	assert_output --partial "failed"
	assert_equal "$(sql "select count(*) from sessions where state <> 'ended'")" 0
	assert_equal "$(warm_of alice)" "$b"
}

@test "a restored session moves with vm-migrate, and vm-watch follows it to its end there" {
	vm-copy -q --master guest alice
	b=$(warm_of alice)
	watch_start
	run_vdi vm-start -o json alice
	sid=$(jq -r '.[0].session' <<<"$output")
	from=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = $sid")
	wait_resumed alice
	run_vdi vm-migrate alice
	to=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.id = $sid")
	[ "$to" != "$from" ]
	assert_equal "$(sql "select state || ' ' || domain || ' ' || warm from sessions where id = $sid")" \
		"running vdi-w$b-alice $b"
	virsh -q -c "$(lab_uri "$to")" domstate "vdi-w$b-alice" | grep -q running
	# The user powers off on the host it moved to: vm-watch ends the session there, and the overlay goes.
	virsh -q -c "$(lab_uri "$to")" shutdown "vdi-w$b-alice" >/dev/null
	wait_sql "select state || ' ' || coalesce(reason, '') from sessions where id = $sid" "ended poweroff" 60
	[ ! -e "$LAB/pool/s$sid-alice.qcow2" ]
	assert_equal "$(warm_of alice)" "$b"
}

@test "a user who connects while the warm build runs is told to try again; warm keys are checked" {
	vm-copy -q --master guest alice
	printf 'warm_timeout = 30s\n' >>"$VDI_CONFIG"
	vm-copy --warm alice >"$W/warm.out" 2>&1 &
	pid=$!
	wait_sql "select count(*) from sessions where kind = 'warm' and state = 'starting'" 1 30
	run vm-start alice
	assert_failure 5
	assert_output --partial "is being made warm"
	wait "$pid"
	[ -n "$(warm_of alice)" ]
	printf 'warm_ready = %0300d\n' 0 >"$VDI_CONFIG"
	run vm-ls
	assert_failure 2
	assert_output --partial "warm_ready: longer than 200 characters"
	printf 'warm = maybe\n' >"$VDI_CONFIG"
	run vm-ls
	assert_failure 2
	run vm-copy --warm
	assert_failure 2
	assert_output --partial "name the users, or give --all"
}

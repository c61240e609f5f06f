#!/usr/bin/env bats
# home.bats - a desktop's lifetime: the user's home disk that outlives every
# session, and masters that update (vm-master update, vm-copy --update).
# The first test boots the lab's real guest; the others use the blank
# master m (no guest boot), whose domains run all the same.

load helpers

setup_file() {
	guest_image || return 1
	lab_suite_start 2
}

teardown_file() {
	lab_suite_stop
}

setup() {
	lab_test_setup
	printf 'domain_type = qemu\nmigrate_unsafe = yes\n' >"$VDI_CONFIG"
}

teardown() {
	local rc=0
	assert_agree || rc=1
	lab_clean
	return $rc
}

# inode VOLUME: the pool file's inode (the same volume, not a copy, keeps it).
inode() {
	stat -c %i "$LAB/pool/$1"
}

# backing VOLUME: the name of the pool file's backing file.
backing() {
	qemu-img info -U --output=json "$LAB/pool/$1" | jq -r '."backing-filename"' | sed 's|.*/||'
}

# home_line USER: the newest "home mount=..." line on USER's newest console.
home_line() {
	grep -o 'vdi-guest: home mount=[^ ]* boots=[0-9]* stops=[0-9]*' "$(console_of "$1")" | tail -n 1
}

# session_ends USER: the power button, the domain gone, the session ended by vm-reap.
session_ends() {
	local dom host
	dom=$(sql "select s.domain from sessions s join uservms u on u.id = s.uservm_id
		where u.username = '$1' and s.state = 'running'")
	host=$(sql "select h.name from sessions s join uservms u on u.id = s.uservm_id join hosts h on
		h.id = s.host_id where u.username = '$1' and s.state = 'running'")
	virsh -q -c "$(lab_uri "$host")" shutdown "$dom" >/dev/null
	wait_domain_gone "$host" "$dom" 90
	run_vdi vm-reap -q
	assert_equal "$(sql "select reason from sessions where domain = '$dom'")" poweroff
}

@test "a file in the home disk outlives sessions, a migration and an update; the system disk's is gone" {
	vm-master -q add guest --image "$GUEST" --os linux --mem 192M
	run_vdi vm-copy --master guest --home 64M -o json alice
	assert_equal "$(jq -r '.[0].home' <<<"$output")" $((64 << 20))
	# The seed asks cloud-init to make the file system once and mount it, by label.
	run isoinfo -i "$LAB/pool/user-alice-seed.iso" -R -x /user-data
	assert_output --partial 'device: "/dev/disk/by-id/virtio-vdi-home"'
	assert_output --partial 'overwrite: false'
	assert_output --partial '[ "LABEL=vdi-home", "/home", ext4,'
	# The first boot made it and mounted it: one boot counted there.
	run grep -c 'home disk: made its file system' "$(console_of alice)"
	assert_output 1
	assert_equal "$(home_line alice)" "vdi-guest: home mount=/home boots=1 stops=0"
	ino=$(inode home-alice.qcow2)

	# Session 1: the home disk is the second disk, read-write, with no overlay; the system disk's is an overlay.
	run_vdi vm-start alice
	dom=$(sql "select domain from sessions where state = 'running'")
	host=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.state = 'running'")
	run virsh -q -c "$(lab_uri "$host")" domblklist "$dom"
	assert_output --regexp "vdb +$LAB/pool/home-alice.qcow2"
	assert_output --regexp "vda +$LAB/pool/s[0-9]+-alice.qcow2"
	wait_console alice "vdi-guest: ready hostname=alice ip=[^ ]+ disk_boots=2"
	assert_equal "$(home_line alice)" "vdi-guest: home mount=/home boots=2 stops=1"
	session_ends alice

	# Session 2: what session 1 wrote at home is there; what it wrote on its system disk is not.
	run_vdi vm-start alice
	wait_console alice "vdi-guest: ready hostname=alice ip=[^ ]+ disk_boots=2"
	assert_equal "$(home_line alice)" "vdi-guest: home mount=/home boots=3 stops=2"
	# It moves to the other host with its home disk (the shared pool), and stops there.
	from=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.state = 'running'")
	run_vdi vm-migrate alice
	to=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.state = 'running'")
	[ "$from" != "$to" ]
	dom=$(sql "select domain from sessions where state = 'running'")
	run virsh -q -c "$(lab_uri "$to")" domblklist "$dom"
	assert_output --regexp "vdb +$LAB/pool/home-alice.qcow2"
	session_ends alice

	# The master is updated: alice's user VM is made again on the new one, with the same home disk.
	vm-master -q add guest2 --image "$GUEST" --os linux --mem 192M --replaces guest
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].update' <<<"$output")" guest2
	run_vdi vm-copy --update --all
	assert_output --partial "alice: remade on master guest2 (was guest)"
	assert_equal "$(sql "select m.name || ' ' || u.state || ' ' || coalesce(u.updating_from, 0) from uservms u
		join masters m on m.id = u.master_id")" "guest2 ready 0"
	assert_equal "$(inode home-alice.qcow2)" "$ino"
	# Its new system disk had its first boot again (the instance is new to it: disk_boots=1); the home
	# disk kept its file system and what every session wrote there (the fourth boot, the third stop).
	run cat "$(console_of alice)"
	assert_output --partial "first boot of instance vdi-uservm-1: applying hostname=alice"
	refute_output --partial "home disk: made its file system"
	assert_equal "$(home_line alice)" "vdi-guest: home mount=/home boots=4 stops=3"
	assert_output --regexp "vdi-guest: ready hostname=alice ip=[^ ]+ disk_boots=1"
	assert_equal "$(sql "select state from masters where name = 'guest'")" retired
	assert_equal "$(sql "select action from events where object = 'alice' and action like 'uservm-updat%'
		order by id" | tr '\n' ' ')" "uservm-update uservm-updated "

	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].home' <<<"$output")" $((64 << 20))
	[ "$(jq -r '.[0].home_used' <<<"$output")" -gt 0 ]
}

@test "an update of 6 users, 2 in a session, update_parallel = 2: the 4 idle now, the 2 busy after they leave" {
	printf 'update_parallel = 2\n' >>"$VDI_CONFIG"
	vm-copy -q --master m --home 16M u1 u2 u3 u4 u5 u6
	for u in u1 u2 u3 u4 u5 u6; do eval "ino_$u=$(inode home-$u.qcow2)"; done
	run_vdi vm-start u1
	run_vdi vm-start u2
	busy=$(sql "select id || domain || overlay || host_id from sessions where state = 'running' order by id")
	vm-master -q add m2 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
	run_vdi vm-master update m m2
	assert_output --partial "replaced master m with m2: 6 user VMs to update"
	# -n: the plan, nothing done.
	run_vdi vm-copy --update --all -n
	assert_output --partial "would update u3 from master m to m2"
	assert_output --partial "2 user VMs in a session: updated when they end"
	refute_output --partial "would update u1"
	run_vdi vm-copy --update -n u1 u3
	assert_output --partial "would update u1 from master m to m2 when its session ends"
	assert_output --partial "would update u3 from master m to m2"
	assert_equal "$(sql "select count(*) from uservms where master_id = (select id from masters where name = 'm2')")" 0
	run_vdi vm-ls -o json
	assert_equal "$(jq -r '[.[] | .update] | unique | join(" ")' <<<"$output")" m2

	out=$(vm-copy --update --all -o json 2>"$BATS_TEST_TMPDIR/err")
	assert_equal "$(jq -r '[.[] | .user] | join(" ")' <<<"$out")" "u3 u4 u5 u6"
	grep -q "2 user VMs in a session: updated when they end" "$BATS_TEST_TMPDIR/err"
	assert_equal "$(sql "select username from uservms u join masters m on m.id = u.master_id where m.name = 'm2'
		order by username" | tr '\n' ' ')" "u3 u4 u5 u6 "
	# Their system disks are new, on m2; the sessions and the disks under them were not touched.
	assert_equal "$(backing user-u3.qcow2)" master-m2
	assert_equal "$(backing user-u1.qcow2)" master-m
	assert_equal "$(sql "select id || domain || overlay || host_id from sessions where state = 'running' order by id")" "$busy"
	assert_equal "$(sql "select state from masters where name = 'm'")" active
	# At most update_parallel (2) at once: never a third claim before one of the first two was done.
	open=0 most=0
	for a in $(sql_list ' ' "select action from events where action in ('uservm-update', 'uservm-updated') order by id"); do
		if [ "$a" = uservm-update ]; then open=$((open + 1)); else open=$((open - 1)); fi
		[ $open -le $most ] || most=$open
	done
	[ "$most" -le 2 ] || { echo "# $most updates at once" >&3; false; }

	# The two leave; the next run updates them, and m is retired (not removed).
	run_vdi vm-reap --session "$(sql "select id from sessions where state = 'running' order by id limit 1")"
	run_vdi vm-reap --session "$(sql "select id from sessions where state = 'running' order by id limit 1")"
	out=$(vm-copy --update --all -o json 2>"$BATS_TEST_TMPDIR/err")
	assert_equal "$(jq -r '[.[] | .user] | join(" ")' <<<"$out")" "u1 u2"
	assert_equal "$(sql "select name || ' ' || state || ' ' || coalesce(replaced_by, 0) from masters where name = 'm'")" \
		"m retired $(sql "select id from masters where name = 'm2'")"
	for u in u1 u2 u3 u4 u5 u6; do
		v=ino_$u
		assert_equal "$(inode home-$u.qcow2)" "${!v}"
	done
	assert_equal "$(sql "select count(*) from events where action = 'uservm-updated'")" 6
	# Nothing left to do.
	run_vdi vm-copy --update --all
	assert_output ""
	run_vdi 3 vm-copy --update u1
	assert_output --partial "its master m2 is up to date"
}

@test "kill -9 at each step of an update: the next run converges, the home disk stays, the user gets a desktop" {
	vm-copy -q --master m --home 16M alice
	ino=$(inode home-alice.qcow2)
	vm-master -q add m2 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1 --replaces m
	for step in update-claimed remade; do
		VDI_TEST_STOP_AT=$step run_vdi 137 vm-copy --update alice
		# Half way: the user waits (75, a temporary refusal), nothing is started on a half-made disk.
		run_vdi 75 vm-start alice
		assert_output --partial "is being updated to a new master"
		assert_equal "$(sql "select count(*) from sessions where state <> 'ended'")" 0
		run_vdi vm-ls -o json alice
		assert_equal "$(jq -r '.[0].update' <<<"$output")" updating
		# The cron line's next run finishes it.
		out=$(vm-copy --update --all -o json 2>"$BATS_TEST_TMPDIR/err")
		assert_equal "$(jq -r '.[0].user + " " + .[0].master' <<<"$out")" "alice m2"
		grep -q "alice: remade on master m2 (was m)" "$BATS_TEST_TMPDIR/err"
		assert_equal "$(sql "select u.state || ' ' || m.name || ' ' || coalesce(u.updating_from, 0) from uservms u
			join masters m on m.id = u.master_id")" "ready m2 0"
		assert_equal "$(inode home-alice.qcow2)" "$ino"
		vol_exists user-alice.qcow2
		vol_exists user-alice-seed.iso
		run_vdi vm-start alice
		run_vdi vm-reap --session "$(sql "select id from sessions where state = 'running'")"
		# Roll back, to update again from the other side: the same roll, the other way.
		run_vdi vm-master update m2 m
		assert_equal "$(sql "select name || ' ' || state || ' ' || coalesce(replaced_by, 0) from masters
			where name = 'm'")" "m active 0"
		run_vdi vm-copy --update --all
		assert_equal "$(sql "select m.name from uservms u join masters m on m.id = u.master_id")" m
		assert_equal "$(sql "select state from masters where name = 'm2'")" retired
		run_vdi vm-master update m m2
	done
	# A copy killed after it made the home disk: the next copy takes over and makes it again, no leftover.
	VDI_TEST_STOP_AT=home run_vdi 137 vm-copy --master m2 --home 16M bob
	assert_equal "$(sql "select state from homes where username = 'bob'")" creating
	run_vdi vm-copy --master m2 --home 16M bob
	assert_equal "$(sql "select state from homes where username = 'bob'")" ready
	run_vdi vm-start bob
}

@test "--force-update: a stale user waits for the update; a running desktop is left alone" {
	vm-copy -q --master m --home 16M alice bob
	run_vdi vm-start bob
	vm-master -q add m2 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1
	run_vdi vm-master update --force-update m m2
	assert_output --partial "their users wait for it"
	run_vdi 75 vm-start alice
	assert_output --partial "waits for its update to a new master"
	# bob's desktop runs on, and reconnecting to it is no new session.
	run_vdi vm-start bob
	assert_equal "$(sql "select count(*) from sessions")" 1
	run_vdi vm-copy --update alice
	run_vdi vm-start alice
	# Without it, a stale user gets the old desktop once more.
	vm-copy -q --master m2 --home 16M carol
	vm-master -q add m3 --prepare none --image "$IMG/m.qcow2" --os linux --mem 64M --vcpus 1 --replaces m2
	run_vdi vm-start carol
	assert_equal "$(sql "select m.name from uservms u join masters m on m.id = u.master_id where username = 'carol'")" m2
}

@test "home disks: kept by --rm (it says so) and attached again, purged on request, never deleted by vm-reap" {
	vm-copy -q --master m --home 32M alice
	ino=$(inode home-alice.qcow2)
	run_vdi vm-copy --rm alice
	assert_output --partial "removed the user VM of alice; its home disk is kept (--purge-home deletes it)"
	assert_equal "$(inode home-alice.qcow2)" "$ino"
	# The orphan audit reports it and keeps it.
	run_vdi vm-reap --orphans
	assert_output --partial "home-alice.qcow2"
	vol_exists home-alice.qcow2
	# alice's next user VM gets it back, whatever size is asked.
	run_vdi vm-copy --master m alice
	assert_output --partial "alice: its kept home disk (32 MiB) is attached again"
	assert_equal "$(inode home-alice.qcow2)" "$ino"
	run_vdi vm-start alice
	dom=$(sql "select domain from sessions where state = 'running'")
	run virsh -q -c "$(lab_uri h1)" domblklist "$dom"
	[ "$status" -eq 0 ] && [[ $output == *home-alice.qcow2* ]] ||
		{ run virsh -q -c "$(lab_uri h2)" domblklist "$dom"; assert_output --partial home-alice.qcow2; }
	# vm-reap ends the session: the home disk stays; vm-ls shows its size and use.
	run_vdi vm-reap --session "$(sql "select id from sessions where state = 'running'")"
	vol_exists home-alice.qcow2
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].home' <<<"$output")" $((32 << 20))
	[ "$(jq -r '.[0].home_used' <<<"$output")" -gt 0 ]
	run_vdi vm-copy --rm --purge-home alice
	assert_output --partial "removed the user VM of alice and its home disk"
	! vol_exists home-alice.qcow2
	assert_equal "$(sql "select count(*) from homes")" 0
	assert_equal "$(sql "select action from events where object = 'alice' order by id desc limit 1")" home-purged
	# An expired user VM goes with vm-reap --expired; its home disk stays.
	vm-copy -q --master m --home 16M --ttl 1s carol
	sleep 1.1
	run_vdi vm-reap --expired
	assert_equal "$(sql "select count(*) from uservms where username = 'carol'")" 0
	vol_exists home-carol.qcow2
	run_vdi vm-copy --rm --purge-home carol
	# A home disk kept with no user VM (vm-reap --orphans lists it) is purged on request too.
	vm-copy -q --master m --home 16M bob
	vm-copy -q --rm bob
	run_vdi vm-copy --rm --purge-home -n bob
	assert_output --partial "would remove the home disk bob kept (there is no user VM)"
	vol_exists home-bob.qcow2
	run_vdi vm-copy --rm --purge-home bob
	assert_output --partial "removed the home disk bob kept (there is no user VM)"
	! vol_exists home-bob.qcow2
	run_vdi 3 vm-copy --rm --purge-home bob
	assert_output --partial "has no user VM and no home disk"
}

@test "--home-resize grows a home disk between sessions; it never shrinks" {
	vm-copy -q --master m --home 32M alice
	run_vdi vm-copy --home-resize 64M alice
	assert_output --partial "grew the home disk of alice to 64 MiB"
	assert_equal "$(qemu-img info --output=json "$LAB/pool/home-alice.qcow2" | jq '."virtual-size"')" $((64 << 20))
	assert_equal "$(sql "select size from homes")" $((64 << 20))
	run_vdi 2 vm-copy --home-resize 32M alice
	assert_output --partial "a home disk only grows, never shrinks"
	run_vdi vm-start alice
	run_vdi 5 vm-copy --home-resize 128M alice
	assert_output --partial "grows only between sessions"
	assert_equal "$(qemu-img info -U --output=json "$LAB/pool/home-alice.qcow2" | jq '."virtual-size"')" $((64 << 20))
	run_vdi 3 vm-copy --home-resize 128M bob
}

@test "refusals: sizes, a replace across OS families or profiles, removing a used master; each changes nothing" {
	printf 'home_max = 1G\n' >>"$VDI_CONFIG"
	sum=$(vmdb_sum)
	run_vdi 2 vm-copy --master m --home 1M alice
	assert_output --partial "below the smallest a file system takes (16 MiB)"
	run_vdi 2 vm-copy --master m --home 2G alice
	assert_output --partial "over home_max (1024 MiB)"
	run_vdi 2 vm-copy --master m --home lots alice
	run_vdi 2 vm-master add big --image "$IMG/m.qcow2" --home 1K
	assert_equal "$(vmdb_sum)" "$sum"
	! ls "$LAB"/pool/home-* 2>/dev/null

	vm-copy -q --master m alice
	vm-master -q add win --prepare none --image "$IMG/m.qcow2" --os win11 --mem 64M
	vm-master -q add deb --prepare none --image "$IMG/m.qcow2" --os debian12 --mem 64M
	vm-master -q add deb13 --prepare none --image "$IMG/m.qcow2" --os debian13 --mem 64M --profile windows
	sum=$(vmdb_sum)
	run_vdi 5 vm-master update m win
	assert_output --partial "another OS family (--force if you mean it)"
	run_vdi 5 vm-master update deb deb13
	assert_output --partial "has profile windows"
	run_vdi 2 vm-master update m m
	run_vdi 2 vm-master update m
	run_vdi 3 vm-master update m nosuch
	run_vdi 5 vm-master rm m
	assert_output --partial "used by 1 user VM"
	assert_equal "$(vmdb_sum)" "$sum"
	run_vdi vm-master update --force m win
	assert_equal "$(sql "select replaced_by from masters where name = 'm'")" "$(sql "select id from masters where name = 'win'")"
}

@test "hostile names, and a home disk planted in the pool before the copy: refused, the planted file untouched" {
	for u in $'a\nb' '<b>' '../x' '-rf' ''; do
		run_vdi 2 vm-copy --master m --home 16M -- "$u"
		[ "${#lines[@]}" -eq 1 ]
	done
	run_vdi 2 vm-copy --home-resize 32M $'x\ty'
	run_vdi 2 vm-master update '<m>' m
	# Digits only is a name like any other.
	run_vdi vm-copy --master m --home 16M 1234
	vol_exists home-1234.qcow2
	printf 'not yours\n' >"$LAB/pool/home-carol.qcow2"
	sum=$(file_sum "$LAB/pool/home-carol.qcow2")
	run_vdi 5 vm-copy --master m --home 16M carol
	assert_output --partial "a volume home-carol.qcow2 that vdi-tools did not make is in pool vdi already; left alone"
	assert_equal "$(file_sum "$LAB/pool/home-carol.qcow2")" "$sum"
	assert_equal "$(sql "select count(*) from uservms where username = 'carol'") $(sql "select count(*) from homes where username = 'carol'")" "0 0"
	! vol_exists user-carol.qcow2
	rm -f "$LAB/pool/home-carol.qcow2"
}

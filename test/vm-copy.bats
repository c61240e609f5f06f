#!/usr/bin/env bats
# vm-copy against a 2-host lab: thin per-user overlays with a seed.

load helpers

setup_file() {
	lab_start 2
	IMG=$(mktemp -d /tmp/vdi-img.XXXXXX)
	export IMG
	qemu-img create -q -f qcow2 "$IMG/m.qcow2" 100M
}

teardown_file() {
	lab_stop
	rm -rf "$IMG"
}

setup() {
	common_setup
	add_lab_hosts
	vm-master -q add win11 --prepare none --image "$IMG/m.qcow2" --os win11 --app office --mem 64M --vcpus 2
}

teardown() {
	# Whatever the test did, the VMDB, libvirt and the pool must agree.
	local agree=0
	assert_agree || agree=1
	rm -f "$LAB"/pool/master-* "$LAB"/pool/user-*
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null 2>&1 || true
	virsh -q -c "$(lab_uri h2)" pool-refresh vdi >/dev/null 2>&1 || true
	return $agree
}

# The seed's user-data of USER, read out of the ISO with isoinfo.
seed_user_data() {
	isoinfo -i "$LAB/pool/user-$1-seed.iso" -R -x /user-data
}

@test "a user VM is a qcow2 overlay backed by its master, sized as asked, with a seed" {
	run_vdi vm-copy --master win11 --disk 1G --mem 128M alice -o json
	assert_output --partial '"user":"alice","master":"win11","disk":1073741824,"mem":134217728,"vcpus":2'
	run qemu-img info --backing-chain "$LAB/pool/user-alice.qcow2"
	assert_output --partial "backing file: $LAB/pool/master-win11"
	assert_output --partial "virtual size: 1 GiB"
	run seed_user_data alice
	assert_line 'hostname: "alice"'
	assert_line '  - name: "alice"'
	[ "$(sql "select state || ' ' || hostname || ' ' || mem from uservms where username = 'alice'")" = "ready alice 134217728" ]
}

@test "copies are thin: the overlay's size does not grow with the master's" {
	vm-copy -q --master win11 bob
	local alloc
	alloc=$(du -k "$LAB/pool/user-bob.qcow2" | cut -f1)
	[ "$alloc" -lt 1024 ]
}

@test "--os/--app picks the covering master with the fewest extra apps, newest first; apps it lacks go in the seed" {
	vm-master -q add big --prepare none --image "$IMG/m.qcow2" --os win11 --app office --app chrome --app gimp
	vm-master -q add oc --prepare none --image "$IMG/m.qcow2" --os win11 --app office --app chrome
	vm-master -q add oc2 --prepare none --image "$IMG/m.qcow2" --os win11 --app office --app chrome
	run_vdi vm-copy --os win11 --app office u1 -o tsv
	assert_output --regexp $'^u1\twin11\t'
	run_vdi vm-copy --os win11 --app chrome --app office u2 -o tsv
	assert_output --regexp $'^u2\toc2\t'
	run_vdi vm-copy --master win11 --app office --app vlc u3 -o json
	assert_output --partial '"apps_added":["vlc"]'
	run seed_user_data u3
	assert_line '  - "vlc"'
}

@test "no master covers the request: exit 3 naming the apps no master has; nothing made" {
	run_vdi 3 vm-copy --os win11 --app office --app photoshop u1
	assert_output --partial "has the apps: photoshop"
	run_vdi 3 vm-copy --os beos u1
	[ "$(sql 'select count(*) from uservms')" = 0 ]
	! vol_exists user-u1.qcow2
}

@test "a disk smaller than the master is exit 2 and makes nothing" {
	run_vdi 2 vm-copy --master win11 --disk 50M u1
	assert_output --partial "smaller than master"
	[ "$(sql 'select count(*) from uservms')" = 0 ]
}

@test "a user who has a user VM gets exit 5 and the VM is untouched" {
	vm-copy -q --master win11 alice
	local before
	before=$(file_sum "$LAB/pool/user-alice.qcow2")
	run_vdi 5 vm-copy --master win11 --disk 2G alice
	assert_output --partial "has a user VM already"
	[ "$(file_sum "$LAB/pool/user-alice.qcow2")" = "$before" ]
	[ "$(sql "select disk from uservms where username = 'alice'")" = 104857600 ]
}

@test "users from stdin; one failure does not stop the others; the exit status tells" {
	vm-copy -q --master win11 carol
	run_vdi 2 vm-copy --master win11 <<'USERS'
dave
# a comment
carol   already there
bad/name
erin extra fields are ignored
USERS
	assert_output --partial "carol"
	assert_output --partial "invalid user name 'bad/name'"
	[ "$(sql_list , "select username from uservms order by username")" = "carol,dave,erin" ]
}

@test "on a terminal a batch counts done/total up and shows each user as it is made; in a pipe, nothing extra" {
	# script(1) gives the command a terminal; its output keeps the carriage returns of the bar.
	run script -qec "vm-copy --master win11 u1 u2 u3 u4 u5 u6" /dev/null
	assert_success
	local counts
	counts=$(tr '\r' '\n' <<<"$output" | sed -n 's/^copying: \[[# ]*\] \([0-9]\)\/6 .*/\1/p' | paste -sd' ')
	assert_equal "$counts" "1 2 3 4 5 6"
	for u in u1 u2 u3 u4 u5 u6; do
		assert_output --partial "$u: ready"
	done
	assert_output --regexp 'USER +MASTER'
	# In a pipe: the table only.
	run_vdi vm-copy --master win11 u7 u8
	refute_output --partial "copying"
	refute_output --partial "u7: ready"
	assert_equal "${#lines[@]}" 2   # TSV: one line per user
}

@test "50 users from a CSV in one command, each thin; bad lines reported by number and skipped" {
	vm-master -q add lin --prepare none --image "$IMG/m.qcow2" --os linux --app vim --app git --mem 256M
	{
		echo "user,os,apps,mem,vcpus,disk"
		for i in $(seq 1 50); do
			if [ $((i % 2)) -eq 0 ]; then echo "user$i,win11,office,128M,1,"; else echo "user$i,linux,vim;git,,2,1G"; fi
		done
		echo "broken,win11,office,lots,1,"
		echo '"quoted",linux,"vim",,,'
	} >"$BATS_TEST_TMPDIR/req.csv"
	run_vdi 2 vm-copy --csv -o tsv <"$BATS_TEST_TMPDIR/req.csv"
	assert_output --partial "line 52: mem: invalid size 'lots'"
	[ "$(sql "select count(*) from uservms where state = 'ready'")" = 51 ]
	[ "$(sql "select count(*) from uservms u join masters m on m.id = u.master_id where m.name = 'lin' and u.disk = 1073741824 and u.vcpus = 2")" = 25 ]
	[ "$(sql "select count(*) from uservms where mem = 268435456")" = 26 ]
	local f
	for f in "$LAB"/pool/user-user*.qcow2; do
		qemu-img info "$f" | grep -q "^backing file: $LAB/pool/master-" || fail "$f has no backing master"
	done
	[ "$(ls "$LAB"/pool/user-user*.qcow2 | wc -l)" = 50 ]
}

@test "--rm deletes disk, seed and row; refused while a session is not ended unless --force" {
	vm-copy -q --master win11 alice
	sql "insert into sessions (uservm_id, host_id, state, mem, vcpus, created, changed)
	     values ((select id from uservms where username = 'alice'), 1, 'running', 67108864, 1, 0, 0)"
	run_vdi 5 vm-copy --rm alice
	assert_output --partial "has session"
	vol_exists user-alice.qcow2
	run_vdi vm-copy --rm --force alice
	! vol_exists user-alice.qcow2
	! vol_exists user-alice-seed.iso
	[ "$(sql 'select count(*) from uservms')" = 0 ]
	run_vdi 3 vm-copy --rm alice
}

@test "--expires and --ttl record the expiry; a past date is exit 2" {
	vm-copy -q --master win11 --expires 2099-01-31 alice
	vm-copy -q --master win11 --ttl 2h bob
	[ "$(sql "select expires from uservms where username = 'alice'")" = "$(date -ud 2099-01-31 +%s)" ]
	local now ttl
	now=$(date +%s)
	ttl=$(sql "select expires from uservms where username = 'bob'")
	[ $((ttl - now)) -gt 7100 ] && [ $((ttl - now)) -le 7200 ]
	run_vdi 2 vm-copy --master win11 --expires 2001-01-01 carol
	run_vdi 2 vm-copy --master win11 --expires tomorrow carol
}

@test "a copy whose process died is taken over: its leftover volumes are replaced" {
	local mid
	mid=$(sql "select id from masters where name = 'win11'")
	sql "insert into uservms (username, state, master_id, pool, volume, seed, hostname, mem, vcpus, disk, pid, created)
	     values ('zoe', 'creating', $mid, 'vdi', 'user-zoe.qcow2', 'user-zoe-seed.iso', 'zoe', 1, 1, 1, 999999, 0)"
	echo junk >"$LAB/pool/user-zoe.qcow2"
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null
	run_vdi vm-copy --master win11 zoe
	run qemu-img info "$LAB/pool/user-zoe.qcow2"
	assert_output --partial "backing file: $LAB/pool/master-win11"
	[ "$(sql "select state from uservms where username = 'zoe'")" = ready ]
}

@test "usage errors are exit 2" {
	run_vdi 2 vm-copy alice
	assert_output --partial "give --master"
	run_vdi 2 vm-copy --master win11 --os win11 alice
	run_vdi 2 vm-copy --rm --master win11 alice
	run_vdi 2 vm-copy --force alice
	run_vdi 2 vm-copy --master win11 --mem 1K alice
	run_vdi 2 vm-copy --master win11 --vcpus -2 alice
	run_vdi 2 vm-copy --master win11 </dev/null
	run_vdi 3 vm-copy --master nosuch alice
}

@test "dry run makes nothing" {
	run_vdi vm-copy -n --master win11 alice
	assert_output --partial "would copy master win11 for alice"
	[ "$(sql 'select count(*) from uservms')" = 0 ]
	! vol_exists user-alice.qcow2
}

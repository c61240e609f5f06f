#!/usr/bin/env bats
# desktop.bats - desktops people can use, with the lab's real guest
# (scripts/mkguest): user VMs prepared once, device profiles, the network,
# the address and the .rdp file, SPICE through remote-viewer.

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
	# TCG: this machine kind has a /dev/kvm that cannot run a guest.
	printf 'domain_type = qemu\n' >"$VDI_CONFIG"
	add_lab_hosts --network vdi
	vm-master -q add guest --image "$GUEST" --os linux --mem 192M --rdp
}

teardown() {
	local rc=0
	assert_agree || rc=1
	lab_clean
	return $rc
}

# running_session: dom and host of the one running session.
running_session() {
	dom=$(sql "select domain from sessions where state = 'running'")
	host=$(sql "select h.name from sessions s join hosts h on h.id = s.host_id where s.state = 'running'")
	[ -n "$dom" ] && [ -n "$host" ]
}

@test "a user VM is prepared once: its first boot runs on its own disk, powers off, and the hostname stays there" {
	run_vdi vm-copy --master guest -o json alice
	assert_equal "$(jq -r '.[0].state' <<<"$output")" ready
	assert_equal "$(sql "select state from uservms where username = 'alice'")" ready
	[ -n "$(sql "select prepared from uservms where username = 'alice'")" ]
	# The first boot was a session of kind prepare, placed and reserved like a desktop, ended poweroff.
	assert_equal "$(sql "select kind || ' ' || state || ' ' || reason || ' ' || (case when overlay is null then 1 else 0 end) from sessions")" \
		"prepare ended poweroff 1"
	run grep -c "first boot of instance vdi-uservm-1: applying hostname=alice power_state=poweroff" "$(console_of alice)"
	assert_output 1
	# What it applied is on the user VM's own disk (the FAT partition from 1 MiB).
	qemu-img convert -f qcow2 -O raw "$LAB/pool/user-alice.qcow2" "$BATS_TEST_TMPDIR/alice.raw"
	run mtype -i "$BATS_TEST_TMPDIR/alice.raw@@1M" ::/vdi/hostname
	assert_output alice
	run mtype -i "$BATS_TEST_TMPDIR/alice.raw@@1M" ::/vdi/instance-id
	assert_output vdi-uservm-1
	# The seed says so: power_state, once per instance, and the same instance-id for sessions.
	run isoinfo -i "$LAB/pool/user-alice-seed.iso" -R -x /user-data
	assert_output --partial $'power_state:\n  mode: poweroff'
	assert_equal "$(sql "select count(*) from hosts where sessions > 0")" 0
}

@test "two later sessions boot with that hostname and skip the first-boot steps; virsh shutdown ends them poweroff" {
	vm-copy -q --master guest alice
	local i dom host
	for i in 1 2; do
		run_vdi vm-start alice
		running_session
		wait_console alice "vdi-guest: ready hostname=alice ip=[0-9.]+"
		run cat "$(console_of alice)"
		assert_output --partial "instance vdi-uservm-1 already applied: skipping first-boot steps"
		refute_output --partial "first boot of instance"
		# The user logs off: the ACPI power button, as virsh shutdown presses it.
		virsh -q -c "$(lab_uri "$host")" shutdown "$dom" >/dev/null
		wait_domain_gone "$host" "$dom"
		grep -q "power button: powering off" "$(console_of alice)"
		run_vdi vm-reap -q
		assert_equal "$(sql "select state || ' ' || reason from sessions where domain = '$dom'")" "ended poweroff"
	done
	assert_equal "$(sql "select count(*) from sessions where kind = 'desktop' and reason = 'poweroff'")" 2
	assert_equal "$(sql "select count(*) from sessions where kind = 'prepare'")" 1
}

@test "the desktop's address comes from libvirt's lease: vm-ls shows it, --rdp writes it, the MAC follows the user VM" {
	vm-copy -q --master guest alice
	mkdir "$BATS_TEST_TMPDIR/rdp"
	run_vdi vm-start --rdp "$BATS_TEST_TMPDIR/rdp" alice
	wait_console alice "vdi-guest: ready hostname=alice ip=[0-9.]+"
	ip=$(sed -n 's/.*vdi-guest: ready hostname=alice ip=\([0-9.]*\).*/\1/p' "$(console_of alice)" | tail -n 1)
	[ -n "$ip" ]
	f=$BATS_TEST_TMPDIR/rdp/alice.rdp
	assert_equal "$(stat -c %a "$f")" 600
	grep -qx "full address:s:$ip"$'\r' "$f"
	grep -qx "username:s:alice"$'\r' "$f"
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].address' <<<"$output")" "$ip"
	# Without --rdp (or after a move, which forgets it), a poll of the host records it from the lease.
	sql "update sessions set address = null, address_seen = null"
	vm-hosts -q poll
	run_vdi vm-ls -o json alice
	assert_equal "$(jq -r '.[0].address' <<<"$output")" "$ip"
	# The MAC is the user VM's: 02:56:44 and its id, on every host and in every session.
	id=$(sql "select id from uservms where username = 'alice'")
	running_session
	virsh -q -c "$(lab_uri "$host")" dumpxml "$dom" | grep -q "<mac address='02:56:44:00:00:0$id'/>"
}

@test "vm-start --rdp: a master that does not serve RDP gets a warning and no file; a host without a network, an error" {
	vm-master -q add plain --image "$GUEST" --os linux --mem 192M --prepare none
	vm-copy -q --master plain bob
	mkdir "$BATS_TEST_TMPDIR/rdp"
	run_vdi vm-start --rdp "$BATS_TEST_TMPDIR/rdp" bob
	assert_output --partial "vm-start: warning: bob: master plain does not serve RDP"
	[ ! -e "$BATS_TEST_TMPDIR/rdp/bob.rdp" ]
	vm-reap -q --user bob
	vm-copy -q --master guest carol
	run_vdi vm-hosts set h1 --network ''
	run_vdi vm-hosts set h2 --network ''
	run_vdi 1 vm-start --rdp "$BATS_TEST_TMPDIR/rdp" carol
	assert_output --partial "vm-start: error: carol: host h"
	assert_output --partial "gives sessions no network"
	[ ! -e "$BATS_TEST_TMPDIR/rdp/carol.rdp" ]
	# The session itself runs: only the .rdp could not be written.
	assert_equal "$(sql "select state from sessions where state <> 'ended'")" running
	run_vdi 2 vm-hosts set h1 --network vdi --bridge br0
	run_vdi 2 vm-hosts set h1 --bridge 'br 0'
	run_vdi 2 vm-hosts set h1 --network '../x'
}

@test "the windows profile boots the real guest under OVMF, on SATA with an e1000e NIC (TCG: no Hyper-V)" {
	vm-master -q add win --image "$GUEST" --os win10 --mem 256M --prepare none
	run_vdi vm-master show -o json win
	assert_equal "$(jq -r '[.profile, .firmware, .disk_bus, .nic, .video] | join(" ")' <<<"$output")" \
		"windows efi sata e1000e qxl"
	vm-copy -q --master win wendy
	run_vdi vm-start wendy
	wait_console wendy "vdi-guest: ready hostname=wendy ip=[0-9.]+" 120
	running_session
	xml=$(virsh -q -c "$(lab_uri "$host")" dumpxml "$dom")
	grep -q "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE" <<<"$xml"
	grep -q "<target dev='sda' bus='sata'/>" <<<"$xml"
	grep -q "<model type='e1000e'/>" <<<"$xml"
	grep -q "<clock offset='localtime'>" <<<"$xml"
	# The enlightenments are KVM's; under TCG (the lab) they are left out (test_xml checks them under kvm).
	! grep -q "<hyperv" <<<"$xml"
}

@test "windows11 starts with OVMF secure boot and a TPM 2.0 whose state goes with the session" {
	vm-master -q add w11 --image "$GUEST" --os win11 --profile windows11 --mem 192M --prepare none
	vm-copy -q --master w11 wanda
	run_vdi vm-start wanda
	running_session
	xml=$(virsh -q -c "$(lab_uri "$host")" dumpxml "$dom")
	grep -q "<tpm model='tpm-crb'>" <<<"$xml"
	grep -q "<backend type='emulator' version='2.0'" <<<"$xml"
	grep -q "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE" <<<"$xml"
	uuid=$(virsh -q -c "$(lab_uri "$host")" domuuid "$dom")
	# The emulator runs, with its state under the host's swtpm folder.
	[ -d "$LAB/$host/lib/swtpm/$uuid" ]
	ls "$LAB/$host"/run/libvirt/qemu/swtpm/*.pid >/dev/null 2>&1 || ls "$LAB/$host"/run/qemu/swtpm/*.pid >/dev/null
	run_vdi vm-reap -q --user wanda
	# A transient domain's TPM state is thrown away with it.
	[ ! -d "$LAB/$host/lib/swtpm/$uuid" ]
}

@test "a first boot past prepare_timeout fails the user VM; vm-copy again makes the disk anew and retries" {
	# A master that never powers off: a blank disk said to prepare itself.
	qemu-img create -q -f qcow2 "$BATS_TEST_TMPDIR/blank.qcow2" 32M
	vm-master -q add blank --image "$BATS_TEST_TMPDIR/blank.qcow2" --os linux --mem 64M
	printf 'domain_type = qemu\nprepare_timeout = 3s\n' >"$VDI_CONFIG"
	run_vdi 1 vm-copy --master blank dave
	assert_output --partial "vm-copy: error: dave: its first boot did not power off within prepare_timeout; the user VM is failed (vm-copy dave again retries)"
	assert_equal "$(sql "select state from uservms where username = 'dave'")" failed
	assert_equal "$(sql "select kind || ' ' || reason from sessions")" "prepare expired"
	run_vdi vm-ls -o json dave
	assert_equal "$(jq -r '.[0].vm' <<<"$output")" failed
	run_vdi 5 vm-start dave
	assert_output --partial "vm-start: error: dave: the first boot of the user VM of 'dave' failed (vm-copy dave again retries it)"
	# The retry keeps the user VM (its id, hence its MAC) and makes its disk again.
	touch -d '2000-01-01' "$LAB/pool/user-dave.qcow2"
	run_vdi 1 vm-copy --master blank dave
	[ "$LAB/pool/user-dave.qcow2" -nt "$BATS_TEST_TMPDIR/blank.qcow2" ]
	assert_equal "$(sql "select count(*) || ' ' || min(id) from uservms")" "1 1"
	assert_equal "$(sql "select count(*) from sessions where kind = 'prepare' and reason = 'expired'")" 2
	assert_equal "$(sql "select action from events where object = 'dave' and action like 'uservm-%' order by id")" \
		"$(printf 'uservm-add\nuservm-failed\nuservm-retry\nuservm-add\nuservm-failed')"
	assert_equal "$(sql "select detail from events where action = 'uservm-failed' order by id limit 1")" \
		"first boot (session 1) ended expired"
}

@test "on a terminal vm-copy says who is having a first boot and for how long, and each user as it is ready" {
	run script -qec "vm-copy --master guest hal ivy" /dev/null
	assert_success
	assert_output --regexp 'preparing: \[ *\] 0/2 +0% +first boot: (hal|ivy) [0-9]+s, (hal|ivy) [0-9]+s'
	assert_output --partial "hal: ready"
	assert_output --partial "ivy: ready"
	assert_output --regexp 'preparing: \[#+\] 2/2 100%'
}

@test "a first boot that QEMU pauses fails within seconds, not at prepare_timeout, saying what libvirt and the host's log said" {
	printf 'domain_type = qemu\nprepare_timeout = 5m\nhost_log_dir = %s/%%h/log/qemu\n' "$LAB" >"$VDI_CONFIG"
	vm-copy --master guest fay >"$BATS_TEST_TMPDIR/copy.out" 2>&1 &
	local pid=$! i
	for ((i = 0; i < 300; i++)); do
		running_session 2>/dev/null && break
		sleep 0.1
	done
	running_session
	virsh -q -c "$(lab_uri "$host")" qemu-monitor-command --hmp "$dom" stop >/dev/null
	local rc=0
	wait "$pid" || rc=$?
	assert_equal "$rc" 1
	run cat "$BATS_TEST_TMPDIR/copy.out"
	assert_output --regexp "^vm-copy: error: fay: its first boot stopped running: paused by QEMU, reason unknown to libvirt .*; the host logged: QEMU: .*; the user VM is failed \(vm-copy fay again retries\)$"
	assert_equal "$(sql "select state from uservms where username = 'fay'")" failed
	assert_equal "$(sql "select kind || ' ' || reason from sessions")" "prepare crashed"
	assert_equal "$(sql "select count(*) from hosts where sessions > 0")" 0
}

@test "a first boot under KVM where nested KVM cannot run a kernel (emulation failure) fails at once, quoting QEMU" {
	[ -c /dev/kvm ] || skip "no /dev/kvm"
	printf 'domain_type = kvm\nprepare_timeout = 5m\nhost_log_dir = %s/%%h/log/qemu\n' "$LAB" >"$VDI_CONFIG"
	run vm-copy --master guest gil
	[ "$status" -ne 0 ] || skip "KVM runs guests on this machine"
	assert_output --partial "vm-copy: error: gil: its first boot stopped running: paused"
	assert_output --partial "the host logged: QEMU: "
	assert_output --partial "the user VM is failed"
	assert_equal "$(sql "select state from uservms where username = 'gil'")" failed
}

@test "vm-copy killed while the first boot runs: vm-reap finishes it when the guest powers off" {
	vm-copy -q --master guest erin &
	pid=$!
	for ((i = 0; i < 200; i++)); do
		[ "$(sql "select count(*) from sessions where state = 'running'")" = 1 ] && break
		sleep 0.1
	done
	kill -9 "$pid"
	wait "$pid" || true
	assert_equal "$(sql "select state from uservms where username = 'erin'")" preparing
	wait_console erin "power_state: powering off"
	running_session
	wait_domain_gone "$host" "$dom"
	run_vdi vm-reap -q
	assert_equal "$(sql "select state from uservms where username = 'erin'")" ready
	assert_equal "$(sql "select reason from sessions where domain = '$dom'")" poweroff
	run_vdi vm-start erin
}

@test "remote-viewer shows the real guest's console through SPICE (Xvfb)" {
	vm-copy -q --master guest alice
	run_vdi vm-start --vv "$BATS_TEST_TMPDIR" alice
	wait_console alice "vdi-guest: ready hostname=alice"
	local d=$BATS_TEST_TMPDIR disp=:$((90 + RANDOM % 100))
	Xvfb "$disp" -screen 0 1024x768x24 -nolisten tcp </dev/null >"$d/xvfb.log" 2>&1 3>&- &
	echo $! >"$d/xvfb.pid"
	sleep 1
	DISPLAY=$disp remote-viewer --full-screen "$d/alice.vv" </dev/null >"$d/viewer.log" 2>&1 3>&- &
	echo $! >"$d/viewer.pid"
	running_session
	# SPICE says a client is connected, with its display channel.
	for ((i = 0; i < 80; i++)); do
		virsh -q -c "$(lab_uri "$host")" qemu-monitor-command --hmp "$dom" 'info spice' >"$d/spice" 2>&1 || true
		grep -q "channel name: display" "$d/spice" && break
		sleep 0.25
	done
	sleep 2
	DISPLAY=$disp xwd -root -silent >"$d/screen.xwd"
	stop_pidfile "$d/viewer.pid"
	stop_pidfile "$d/xvfb.pid"
	grep -q "channel name: display" "$d/spice"
	# The screenshot shows the console (text on a background): many colours, not one.
	colours=$(python3 - "$d/screen.xwd" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
hdr = struct.unpack(">25I", data[:100])
size, w, h, bpl, ncolors = hdr[0], hdr[4], hdr[5], hdr[12], hdr[19]
px = data[size + ncolors * 12:]
seen = set(px[y * bpl + x * 4:y * bpl + x * 4 + 3] for y in range(0, h, 2) for x in range(0, w, 2))
print(len(seen))
PY
)
	echo "# screenshot: $colours colours" >&3
	[ "$colours" -ge 2 ]
}

@test "a vm-copy killed between its copy and the first boot: vm-reap fails the user VM, vm-copy again prepares it" {
	VDI_TEST_STOP_AT=preparing run timeout 60 vm-copy --master guest fay
	[ "$status" -ne 0 ]
	assert_equal "$(sql "select state || ' ' || (select count(*) from sessions) from uservms where username = 'fay'")" \
		"preparing 0"
	run_vdi 5 vm-start fay
	assert_output --partial "is being prepared (its first boot)"
	run_vdi vm-reap -n
	assert_output --partial "user VM fay"
	assert_equal "$(sql "select state from uservms where username = 'fay'")" preparing
	run_vdi vm-reap
	assert_output --partial "user VM fay"
	assert_equal "$(sql "select state from uservms where username = 'fay'")" failed
	run_vdi vm-copy --master guest fay
	assert_equal "$(sql "select state from uservms where username = 'fay'")" ready
}

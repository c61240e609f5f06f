#!/usr/bin/env bats
# vdi-lab itself: start, status, a second start refused, stop leaves nothing.

load helpers

setup_file() {
	lab_start 2
}

teardown_file() {
	lab_stop
}

@test "start printed one NAME<TAB>URI line per host, and each URI answers" {
	run cat "$LAB/hosts.tsv"
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 "h1	qemu+unix:///system?socket=$LAB/h1/libvirt-sock"
	run virsh -q -c "$(lab_uri h2)" pool-list --name
	assert_success
	assert_line --regexp '^vdi *$'
}

@test "the hosts are separate: a domain on h1 is not on h2, and they share the pool" {
	local u1 u2
	u1=$(lab_uri h1)
	u2=$(lab_uri h2)
	virsh -q -c "$u1" vol-create-as vdi shared-test.qcow2 1M --format qcow2 >/dev/null
	virsh -q -c "$u2" pool-refresh vdi >/dev/null
	run virsh -q -c "$u2" vol-list vdi
	assert_output --partial shared-test.qcow2
	virsh -q -c "$u1" vol-delete --pool vdi shared-test.qcow2 >/dev/null
	printf '<domain type="qemu"><name>only-h1</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os></domain>' >"$BATS_TEST_TMPDIR/d.xml"
	virsh -q -c "$u1" create "$BATS_TEST_TMPDIR/d.xml" >/dev/null
	run virsh -q -c "$u2" list --name
	refute_output --partial only-h1
	run_vdi vdi-lab status "$LAB"
	assert_line --index 0 --partial "domains=1"
	virsh -q -c "$u1" destroy only-h1 >/dev/null
}

@test "a second start on a running lab is refused with exit 5" {
	run_vdi 5 vdi-lab start -n 2 "$LAB" 3>&-
	assert_output --partial "already runs"
}

@test "bad usage is exit 2; a non-root user is refused" {
	run_vdi 2 vdi-lab start -n 0 "$BATS_TEST_TMPDIR/x"
	run_vdi 2 vdi-lab frobnicate
	# A copy where nobody may read it (the checkout may sit in a private folder).
	local pub
	pub=$(mktemp -d /tmp/vdi-pub.XXXXXX)
	chmod 755 "$pub"
	cp "$TOP/scripts/vdi-lab" "$pub/"
	run setpriv --reuid=65534 --regid=65534 --clear-groups "$pub/vdi-lab" start "$pub/y"
	rm -rf "$pub"
	assert_failure 1
	assert_output --partial "must be run as root"
}

teardown() {
	if [ -n "${LAB2:-}" ]; then
		vdi-lab stop "$LAB2" >/dev/null 2>&1 3>&- || true
		rm -rf "$LAB2"
	fi
}

@test "stop leaves no libvirtd, virtlogd or qemu of the lab behind, even with a guest running" {
	local lab2 pids
	LAB2=$(mktemp -d /tmp/vdi-lab2.XXXXXX)
	lab2=$LAB2
	vdi-lab start -n 1 "$lab2" >/dev/null 3>&-
	printf '<domain type="qemu"><name>g</name><memory unit="MiB">64</memory><os><type arch="x86_64">hvm</type></os></domain>' >"$lab2/g.xml"
	virsh -q -c "qemu+unix:///system?socket=$lab2/h1/libvirt-sock" create "$lab2/g.xml" >/dev/null
	pids="$(cat "$lab2"/h1/libvirtd.pid "$lab2"/h1/virtlogd.pid "$lab2"/h1/run/qemu/*.pid)"
	run_vdi vdi-lab stop "$lab2"
	for p in $pids; do
		! kill -0 "$p" 2>/dev/null || fail "process $p still runs"
	done
	run_vdi 3 vdi-lab status "$lab2"
	assert_output --partial stopped
	rm -rf "$lab2"
}

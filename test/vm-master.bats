#!/usr/bin/env bats
# vm-master against a 2-host lab, with real HTTP and HTTPS servers on
# 127.0.0.1 serving the images.  Every failure must leave no volume and no row.

load helpers

setup_file() {
	# A 4 MiB pool, mounted before the lab starts so the hosts' namespaces see it.
	SMALL=$(mktemp -d /tmp/vdi-small.XXXXXX)
	export SMALL
	mount -t tmpfs -o size=4m tmpfs "$SMALL"
	lab_start 2
	local u
	for h in h1 h2; do
		u=$(lab_uri "$h")
		virsh -q -c "$u" pool-define-as small dir --target "$SMALL" >/dev/null
		virsh -q -c "$u" pool-start small >/dev/null
	done
	WWW=$(mktemp -d /tmp/vdi-www.XXXXXX)
	export WWW
	qemu-img create -q -f qcow2 "$WWW/win11.qcow2" 200M
	head -c 1048576 /dev/urandom >"$WWW/random.raw"
	head -c 8388608 /dev/urandom >"$WWW/big.raw"
	printf '<html><body>Not an image</body></html>\n' >"$WWW/page.html"
	qemu-img create -q -f qcow2 -b "$WWW/win11.qcow2" -F qcow2 "$WWW/backed.qcow2"
	qemu-img create -q -f vmdk "$WWW/disk.vmdk" 10M
	head -c 5000000 /dev/urandom >"$WWW/slow.raw"
	truncate -s 5000192 "$WWW/slow.raw"
	httpd_start "$WWW" web
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
		-keyout "$WWW/key.pem" -out "$WWW/cert.pem" >/dev/null 2>&1
	httpd_start "$WWW" tls --tls "$WWW/cert.pem" "$WWW/key.pem"
}

teardown_file() {
	stop_pidfile "$WWW/web.pid"
	stop_pidfile "$WWW/tls.pid"
	rm -rf "$WWW"
	lab_stop
	umount "$SMALL" 2>/dev/null || true
	rmdir "$SMALL" 2>/dev/null || true
}

setup() {
	common_setup
	add_lab_hosts
}

teardown() {
	# Whatever the test did, the VMDB, libvirt and the pool must agree.
	local agree=0
	assert_agree || agree=1
	# Leave the shared pool as the test found it.
	rm -f "$LAB"/pool/master-* "$LAB"/pool/user-*
	virsh -q -c "$(lab_uri h1)" pool-refresh vdi >/dev/null 2>&1 || true
	virsh -q -c "$(lab_uri h2)" pool-refresh vdi >/dev/null 2>&1 || true
	small_fs_drop
	return $agree
}

url() { echo "http://127.0.0.1:$WEB_PORT/$1"; }

# Nothing of master NAME: no row, no volume.
assert_nothing_left() {
	[ "$(sql "select count(*) from masters where name = '$1'")" = 0 ] || fail "row left for $1"
	! vol_exists "master-$1" || fail "volume left for $1"
}

@test "import over http with its checksum: active, format and size from the image, sha recorded" {
	local sha
	sha=$(sha256sum "$WWW/win11.qcow2" | cut -d' ' -f1)
	run_vdi vm-master add win11 --image "$(url win11.qcow2)" --sha256 "$sha" --os win11 --app office --mem 64M -o json
	run_vdi vm-master show win11 -o json
	run python3 -c '
import json, sys
m = json.loads(sys.argv[1])
assert m["state"] == "active" and m["format"] == "qcow2", m
assert m["virtual_size"] == 200 * 2**20 and m["disk"] == 200 * 2**20, m
assert m["sha256"] == sys.argv[2] and m["apps"] == ["office"] and m["mem"] == 64 * 2**20, m
print("ok")' "$output" "$sha"
	assert_output ok
	vol_exists master-win11
	run qemu-img info "$LAB/pool/master-win11"
	assert_output --partial "file format: qcow2"
	[ "$(sql "select action from events where object = 'win11'")" = master-add ]
}

@test "import from a path and a file:// URL; raw images keep their byte size; the sha is recorded either way" {
	run_vdi vm-master add r1 --image "$WWW/random.raw" --os linux
	run_vdi vm-master add r2 --image "file://$WWW/random.raw" --os linux
	run_vdi vm-master list -o json
	local sha
	sha=$(sha256sum "$WWW/random.raw" | cut -d' ' -f1)
	assert_output --partial "\"format\":\"raw\",\"virtual_size\":1048576"
	[ "$(sql "select count(*) from masters where sha256 = '$sha'")" = 2 ]
	cmp "$WWW/random.raw" "$LAB/pool/master-r1"
}

@test "redirects are followed; a redirect to ftp and a redirect loop are refused" {
	run_vdi vm-master add rd --image "$(url redirect/win11.qcow2)"
	run_vdi '?' vm-master add toftp --image "$(url to-ftp)"
	assert_failure
	assert_nothing_left toftp
	run_vdi '?' vm-master add loop --image "$(url loop)"
	assert_failure
	assert_output --partial "redirect"
	assert_nothing_left loop
}

@test "404 is exit 3 and leaves nothing" {
	run_vdi 3 vm-master add gone --image "$(url no-such.qcow2)"
	assert_output --partial "HTTP 404"
	assert_nothing_left gone
}

@test "a self-signed TLS certificate is refused and leaves nothing" {
	run_vdi 1 vm-master add tls --image "https://127.0.0.1:$TLS_PORT/win11.qcow2"
	assert_output --regexp "certificate|SSL"
	assert_nothing_left tls
}

@test "a truncated transfer fails and leaves nothing" {
	run_vdi 1 vm-master add cut --image "$(url truncated/random.raw)"
	assert_output --partial "truncated"
	assert_nothing_left cut
}

@test "a checksum mismatch fails and leaves nothing" {
	run_vdi 1 vm-master add bad --image "$(url win11.qcow2)" --sha256 "$(printf 'ab%.0s' {1..32})"
	assert_output --partial "checksum mismatch"
	assert_nothing_left bad
}

@test "not an image, another format, or a qcow2 with a backing file: refused, nothing left" {
	run_vdi 1 vm-master add html --image "$(url page.html)"
	assert_output --partial "not a disk image"
	assert_nothing_left html
	run_vdi 1 vm-master add vmdk --image "$WWW/disk.vmdk"
	assert_output --partial "unsupported image format"
	assert_nothing_left vmdk
	run_vdi 1 vm-master add backed --image "$(url backed.qcow2)"
	assert_output --partial "backing file"
	assert_nothing_left backed
}

@test "a full pool fails the upload and leaves nothing" {
	run_vdi 1 vm-master add big --image "$(url big.raw)" --pool small --host h1
	assert_nothing_left big
	[ -z "$(ls "$SMALL")" ]
}

@test "the VMDB's disk full as an import ends: exit 1 with 'disk full', not a lost claim; the next add takes over" {
	# The VMDB alone on a small file system, filled while the image downloads.
	vmdb_on_small_fs
	vm-master add full --image "$(url slow/random.raw)" -q 2>"$BATS_TEST_TMPDIR/add.err" &
	local pid=$! rc=0
	wait_sql "select state from masters where name = 'full'" importing
	vmdb_fill
	wait "$pid" || rc=$?
	cat "$BATS_TEST_TMPDIR/add.err"
	[ "$rc" -eq 1 ] || fail "exit $rc, expected 1: $(cat "$BATS_TEST_TMPDIR/add.err")"
	grep -q 'disk full' "$BATS_TEST_TMPDIR/add.err"
	! grep -q 'claim was lost' "$BATS_TEST_TMPDIR/add.err"
	# Room again: the next add takes the dead claim over and finishes.
	rm "$DBFS/fill"
	run_vdi vm-master add full --image "$WWW/random.raw"
	[ "$(sql "select state from masters where name = 'full'")" = active ]
	cmp "$WWW/random.raw" "$LAB/pool/master-full"
}

@test "an image over image_max_size is refused and leaves nothing" {
	echo "image_max_size = 512K" >"$VDI_CONFIG"
	run_vdi 1 vm-master add huge --image "$(url random.raw)"
	assert_output --partial "image_max_size"
	assert_nothing_left huge
}

@test "a server nobody listens on is exit 75" {
	run_vdi 75 vm-master add down --image "http://127.0.0.1:1/win11.qcow2"
	assert_nothing_left down
}

@test "a second add of the same name is a conflict (5) and leaves the first untouched" {
	vm-master -q add m1 --image "$(url win11.qcow2)"
	local before
	before=$(file_sum "$LAB/pool/master-m1")
	run_vdi 5 vm-master add m1 --image "$(url random.raw)"
	assert_output --partial "exists already"
	[ "$(file_sum "$LAB/pool/master-m1")" = "$before" ]
	[ "$(sql "select format from masters where name = 'm1'")" = qcow2 ]
}

@test "bad names, URLs, checksums and sizes are usage errors (2)" {
	run_vdi 2 vm-master add "a/b" --image "$(url win11.qcow2)"
	run_vdi 2 vm-master add m --image "ftp://127.0.0.1/x.qcow2"
	assert_output --partial "only http, https and file"
	run_vdi 2 vm-master add m --image "$(url win11.qcow2)" --sha256 xyz
	run_vdi 2 vm-master add m
	assert_output --partial "--image"
	run_vdi 2 vm-master add m --image "$(url win11.qcow2)" --mem -1G
	run_vdi 2 vm-master add m --image "$(url win11.qcow2)" --vcpus 0
	run_vdi 2 vm-master add m --image "$(url win11.qcow2)" --os "bad os"
	run_vdi 2 vm-master add m --image "$(url win11.qcow2)" --disk 10M
	assert_output --partial "smaller than the image"
	assert_nothing_left m
}

@test "an import killed half-way is taken over by the next add of the name" {
	vm-master add slow --image "$(url slow/slow.raw)" -q &
	local pid=$!
	sleep 1.5
	kill -9 "$pid"
	wait "$pid" || true
	[ "$(sql "select state from masters where name = 'slow'")" = importing ]
	vol_exists master-slow
	run_vdi vm-master list -o tsv
	assert_output --partial "slow	importing"
	run_vdi vm-master add slow --image "$WWW/slow.raw"
	assert_output --partial "took over"
	[ "$(sql "select state from masters where name = 'slow'")" = active ]
	cmp "$WWW/slow.raw" "$LAB/pool/master-slow"
}

@test "retire stops new copies but keeps existing user VMs; rm is refused while user VMs use it" {
	vm-master -q add m1 --image "$(url win11.qcow2)" --os win11 --mem 64M --prepare none
	vm-copy -q --master m1 alice
	run_vdi vm-master retire m1
	run_vdi 5 vm-copy --master m1 bob
	assert_output --partial "retired"
	run_vdi vm-master show m1 -o json
	assert_output --partial '"state":"retired"'
	assert_output --partial '"uservms":1'
	run_vdi 5 vm-master rm m1
	assert_output --partial "used by 1 user VM"
	vm-copy -q --rm alice
	run_vdi vm-master rm m1
	! vol_exists master-m1
	[ "$(sql "select count(*) from masters")" = 0 ]
	run_vdi 3 vm-master rm m1
}

@test "dry run imports nothing" {
	run_vdi vm-master add m1 --image "$(url win11.qcow2)" -n
	assert_output --partial "would import"
	assert_nothing_left m1
}

/* test_file.c - reading the tail of a log (lib/base/file.c): lines, hostile bytes, planted files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "file.h"

static char dir[] = "/tmp/vdi-test-file.XXXXXX";

static const char *
put(const char *name, const char *data, size_t len)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static void
test_tail_lines(void **state)
{
	char buf[256];
	static const char log[] = "one\ntwo\n\n\r\nthree\nfour\n\n";

	(void)state;
	assert_int_equal(vdi_file_tail(put("a.log", log, sizeof(log) - 1), 2, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "three | four");
	assert_int_equal(vdi_file_tail(put("a.log", log, sizeof(log) - 1), 10, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "one | two | three | four");
	/* No newline at the end; a short buffer is cut, never overrun. */
	assert_int_equal(vdi_file_tail(put("b.log", "x\nlast", 6), 1, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "last");
	assert_int_equal(vdi_file_tail(put("b.log", "abcdefgh", 8), 1, NULL, buf, 4), 0);
	assert_string_equal(buf, "abc");
	assert_int_equal(vdi_file_tail(put("c.log", "", 0), 3, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

static void
test_tail_words(void **state)
{
	char buf[256];
	static const char *const words[] = { "error", "fail", NULL };
	static const char log[] = "start\nKVM internal error. Suberror: 1\nemulation failure\nRAX=0\nRBX=0\nCode=00\n";

	(void)state;
	/* The lines that say what went wrong, not the register dump after them. */
	assert_int_equal(vdi_file_tail(put("w.log", log, sizeof(log) - 1), 3, words, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "KVM internal error. Suberror: 1 | emulation failure");
	/* No line has the words: the last lines. */
	assert_int_equal(vdi_file_tail(put("w.log", "a\nb\nc\n", 6), 2, words, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "b | c");
}

static void
test_tail_hostile(void **state)
{
	char buf[256];
	static const char log[] = "KVM: \033[31memulation\tfailure\x01\xff\n";

	(void)state;
	assert_int_equal(vdi_file_tail(put("h.log", log, sizeof(log) - 1), 3, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "KVM: ?[31memulation?failure??");
}

static void
test_tail_big(void **state)
{
	size_t n = 100000;
	char *big = malloc(n), buf[128];

	(void)state;
	/* 40 KiB of 'a' lines, then two short ones: the window's cut first line is not shown. */
	memset(big, 'a', n);
	for (size_t i = 99; i < n; i += 100)
		big[i] = '\n';
	memcpy(big + n - 12, "\nend1\nend2\n", 11);
	big[n - 1] = '\n';
	assert_int_equal(vdi_file_tail(put("big.log", big, n), 2, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "end1 | end2");
	free(big);
}

static void
test_tail_planted(void **state)
{
	char buf[64] = "x", path[256], target[256];

	(void)state;
	/* A FIFO does not block, a symlink is not followed, a missing file is -1: all leave buf empty. */
	snprintf(path, sizeof(path), "%s/fifo.log", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(vdi_file_tail(path, 3, NULL, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	snprintf(target, sizeof(target), "%s", put("secret", "s3cret\n", 7));
	snprintf(path, sizeof(path), "%s/link.log", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(vdi_file_tail(path, 3, NULL, buf, sizeof(buf)), -1);
	assert_string_equal(buf, "");
	snprintf(path, sizeof(path), "%s/none.log", dir);
	assert_int_equal(vdi_file_tail(path, 3, NULL, buf, sizeof(buf)), -1);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* A warm image's path beside its layer: the folder kept, a bare name stays bare, a short buffer cut. */
static void
test_beside(void **state)
{
	char buf[64], small[8];

	(void)state;
	vdi_file_beside("/var/lib/libvirt/images/w3-a.qcow2", "w3-a.save", buf, sizeof(buf));
	assert_string_equal(buf, "/var/lib/libvirt/images/w3-a.save");
	vdi_file_beside("w3-a.qcow2", "w3-a.save", buf, sizeof(buf));
	assert_string_equal(buf, "w3-a.save");
	vdi_file_beside("/w3-a.qcow2", "x", buf, sizeof(buf));
	assert_string_equal(buf, "/x");
	vdi_file_beside("/pool/w3-a.qcow2", "w3-a.save", small, sizeof(small));
	assert_string_equal(small, "/pool/w");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tail_lines),
		cmocka_unit_test(test_tail_words),
		cmocka_unit_test(test_tail_hostile),
		cmocka_unit_test(test_tail_big),
		cmocka_unit_test(test_tail_planted),
		cmocka_unit_test(test_beside),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

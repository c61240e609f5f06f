/*
 * test_threads.c - libxml2's first use from many threads at once (lib/base/xml.c
 * vdi_xml_init).  A batch's workers build volume XML at the same moment; if
 * libxml2 is not set up before, its lazily made global mutexes race and one
 * leaks (about one run in two).  Each try runs in a fresh child, whose
 * libxml2 nobody has touched, and under make check SANITIZE=1 the leak
 * checker fails the child's exit.  This file's parent never touches libxml2.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "meta.h"
#include "xml.h"

#define THREADS 8

static pthread_barrier_t bar;

static void *
first_use(void *arg)
{
	struct vdi_volume_spec v = { .name = "x", .capacity = 1, .format = "qcow2" };
	struct vdi_meta m = { .session_id = 1, .uservm_id = 1, .user = "alice" };
	struct vdi_err err = { 0 };

	pthread_barrier_wait(&bar);
	free((long)arg % 2 ? vdi_xml_volume(&v, &err) : vdi_meta_format(&m, &err));
	return NULL;
}

static void
test_first_use_from_threads(void **state)
{
	(void)state;
	for (int k = 0; k < 20; k++) {
		pid_t pid = fork();
		int status = -1;

		assert_true(pid >= 0);
		if (pid == 0) {
			pthread_t t[THREADS];

			pthread_barrier_init(&bar, NULL, THREADS);
			for (long i = 0; i < THREADS; i++)
				if (pthread_create(&t[i], NULL, first_use, (void *)i) != 0)
					_exit(2);
			for (int i = 0; i < THREADS; i++)
				pthread_join(t[i], NULL);
			exit(0); /* exit, not _exit: the leak checker runs at exit */
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_use_from_threads),
	};
	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}

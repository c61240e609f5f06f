/* clock.c - the wall clock, with the tests' offset (see clock.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int64_t offset;

static void
read_offset(void)
{
	const char *s = getenv("VDI_TEST_CLOCK");
	char *end;
	long long v;

	if (!s || !*s)
		return;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (!errno && !*end && v > -100000000LL && v < 100000000LL)
		offset = v;
}

int64_t
vdi_clock_now(void)
{
	pthread_once(&once, read_offset);
	return (int64_t)time(NULL) + offset;
}

int64_t
vdi_clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
vdi_clock_sleep_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

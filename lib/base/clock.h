/*
 * clock.h - the wall clock vdi-tools decides by: TTLs, timeouts, expiry,
 * and the times it records.
 *
 * vdi_clock_now() is time(2), in seconds, plus VDI_TEST_CLOCK seconds if
 * that is set (an integer, which may be negative): the tests move a
 * program's clock forward instead of sleeping past a timeout.  Like
 * VDI_TEST_STOP_AT it is for tests only; nothing else sets it.  Times
 * handed to a hypervisor (a display password's expiry) use time(2) itself.
 */
#ifndef VDI_CLOCK_H
#define VDI_CLOCK_H

#include <stdint.h>

int64_t vdi_clock_now(void);
/* Milliseconds of CLOCK_MONOTONIC: for timeouts and waits within a process, never recorded. */
int64_t vdi_clock_mono_ms(void);
/* Sleep ms milliseconds (a signal may cut it short: the callers look again anyway). */
void vdi_clock_sleep_ms(int64_t ms);

#endif

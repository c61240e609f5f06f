/*
 * proc.h - running an administrator's helper program (a fence agent) with
 * no shell: argv as given, standard input from /dev/null, its output
 * captured (the last lines go into the error when it fails), a time limit
 * after which it is killed; and who this process is, as a claim's owner.
 */
#ifndef VDI_PROC_H
#define VDI_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/*
 * Run argv[0] (an absolute path) with argv, waiting at most timeout_ms.
 * 0: it exited 0.  -1 with err: it could not run (VDI_R_FAIL), exited
 * non-zero or was killed by a signal (VDI_R_FAIL, with the end of its
 * output on one line), or ran past timeout_ms (VDI_R_TEMP; it is killed).
 */
int vdi_proc_run(char *const argv[], int64_t timeout_ms, struct vdi_err *err);

/*
 * This process as the owner of a claim, a token any machine can judge:
 * "HOST/BOOT_ID/PID/START" (the host name, the kernel's boot id, the pid,
 * and the process's start time in clock ticks since boot, so a pid used
 * again is not taken for its old owner).  Made once; static storage.
 * VDI_TEST_HOST="NAME/BOOT_ID" stands for the machine, in tests only.
 */
const char *vdi_proc_owner(void);
/*
 * Judge an owner token from this machine: 1 it is a process of this
 * machine (this boot) that still runs, 0 it was one and is gone, -1 it is
 * another machine's (only its lease can tell).
 */
int vdi_proc_owner_alive(const char *owner);

#endif

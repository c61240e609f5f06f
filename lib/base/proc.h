/*
 * proc.h - running an administrator's helper program (a fence agent) with
 * no shell: argv as given, standard input from /dev/null, its output
 * captured (the last lines go into the error when it fails), a time limit
 * after which it is killed.
 */
#ifndef VDI_PROC_H
#define VDI_PROC_H

#include <stdint.h>

#include "err.h"

/*
 * Run argv[0] (an absolute path) with argv, waiting at most timeout_ms.
 * 0: it exited 0.  -1 with err: it could not run (VDI_R_FAIL), exited
 * non-zero or was killed by a signal (VDI_R_FAIL, with the end of its
 * output on one line), or ran past timeout_ms (VDI_R_TEMP; it is killed).
 */
int vdi_proc_run(char *const argv[], int64_t timeout_ms, struct vdi_err *err);

#endif

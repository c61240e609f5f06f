/*
 * metrics.h - the VMDB's figures in Prometheus' text exposition format
 * (version 0.0.4, what node_exporter's textfile collector and a scrape
 * read): gauges read from the rows as they are now (sessions by state and
 * host, each host's capacity used and free, user VMs and masters by state)
 * and counters that only grow, kept in the table counters by triggers in
 * the same transaction as what they count (schema 9), or by
 * vdi_metrics_count() where no row changes (a refused placement, a watcher
 * that connects).
 *
 * Names follow Prometheus' conventions: vdi_ prefix, base units
 * (_bytes, _seconds), _total for counters.  Label values are escaped as
 * the format says (\\, \", \n).
 *
 * Ownership: vdi_metrics_render writes into the caller's stream; the
 * library prints nothing else.
 */
#ifndef VDI_METRICS_H
#define VDI_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "err.h"

/*
 * Add by to the counter name{key="value"} (key NULL: no label), inside the
 * caller's transaction.  name and key are the caller's constants; value is
 * escaped here.
 */
int vdi_metrics_count(struct vdi_db *db, const char *name, const char *key, const char *value, double by,
		      struct vdi_err *err);

/* Every metric, in one read transaction, into fp.  now: the time written as vdi_metrics_timestamp_seconds. */
int vdi_metrics_render(struct vdi_db *db, FILE *fp, int64_t now, struct vdi_err *err);

#endif

/* report.c - freeing host probe reports (see report.h). */
#include <stdlib.h>
#include <string.h>

#include "report.h"

void
vdi_node_report_clear(struct vdi_node_report *r)
{
	for (size_t i = 0; i < r->ndoms; i++) {
		free(r->doms[i].name);
		free(r->doms[i].uuid);
		free(r->doms[i].user);
		free(r->doms[i].address);
	}
	free(r->doms);
	memset(r, 0, sizeof(*r));
}

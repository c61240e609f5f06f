/* nss.c - a user's groups through NSS (see nss.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "mem.h"
#include "nss.h"
#include "strv.h"

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
vdi_nss_groups(const char *user, char ***groups, size_t *n, struct vdi_err *err)
{
	struct passwd pw, *pwp = NULL;
	char *buf = NULL;
	gid_t *gids = NULL;
	int ngids = 64, rc, ret = -1;
	size_t len = 16384;

	*groups = NULL;
	*n = 0;
	buf = vdi_xmalloc(len);
	while ((rc = getpwnam_r(user, &pw, buf, len, &pwp)) == ERANGE && len < (1 << 20)) {
		len *= 2;
		buf = vdi_xrealloc(buf, len);
	}
	if (rc != 0 && rc != ENOENT && rc != ESRCH && rc != EBADF && rc != EPERM) {
		vdi_err_set(err, VDI_R_TEMP, "cannot look up user %s: %s", user, strerror(rc));
		goto out;
	}
	if (!pwp) {
		ret = 0; /* not known here: no groups */
		goto out;
	}
	gids = vdi_xcalloc((size_t)ngids, sizeof(*gids));
	if (getgrouplist(user, pw.pw_gid, gids, &ngids) < 0) {
		gids = vdi_xrealloc(gids, (size_t)ngids * sizeof(*gids));
		if (getgrouplist(user, pw.pw_gid, gids, &ngids) < 0) {
			vdi_err_set(err, VDI_R_TEMP, "cannot list the groups of %s", user);
			goto out;
		}
	}
	for (int i = 0; i < ngids; i++) {
		struct group gr, *grp = NULL;
		while ((rc = getgrgid_r(gids[i], &gr, buf, len, &grp)) == ERANGE && len < (1 << 20)) {
			len *= 2;
			buf = vdi_xrealloc(buf, len);
		}
		if (grp)
			vdi_strv_push_copy(groups, n, grp->gr_name);
	}
	if (*n > 1)
		qsort(*groups, *n, sizeof(**groups), by_name);
	/* Each once: a primary group may be listed again among the others. */
	for (size_t i = 1; i < *n;) {
		if (strcmp((*groups)[i], (*groups)[i - 1]) == 0) {
			free((*groups)[i]);
			memmove(&(*groups)[i], &(*groups)[i + 1], (*n - i - 1) * sizeof(**groups));
			(*n)--;
		} else {
			i++;
		}
	}
	ret = 0;
out:
	free(gids);
	free(buf);
	return ret;
}

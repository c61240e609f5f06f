/* seed.c - cloud-init NoCloud seed images for user VMs (see seed.h). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"
#include "seed.h"

extern char **environ;

void
vdi_seed_hostname(const char *user, char *buf, size_t len)
{
	size_t o = 0;

	for (const char *p = user; *p && o + 1 < len && o < 63; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (o == 0 || buf[o - 1] == '-'))
			continue;
		buf[o++] = c;
	}
	while (o > 0 && buf[o - 1] == '-')
		o--;
	buf[o] = '\0';
	if (o == 0)
		snprintf(buf, len, "desktop");
}

static char *
mem_printf(FILE **fp, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	*fp = open_memstream(buf, len);
	return *fp ? *buf : NULL;
}

char *
vdi_seed_user_data(const struct vdi_seed *s)
{
	FILE *fp;
	char *buf;
	size_t len;

	mem_printf(&fp, &buf, &len);
	if (!fp)
		return NULL;
	/* Values are checked names ([A-Za-z0-9._-]): quoting keeps YAML from reading "no" or "1.0". */
	fprintf(fp, "#cloud-config\n");
	fprintf(fp, "# vdi-tools: the environment of user VM %lld\n", (long long)s->uservm_id);
	fprintf(fp, "hostname: \"%s\"\n", s->hostname);
	fprintf(fp, "preserve_hostname: false\n");
	fprintf(fp, "users:\n  - default\n  - name: \"%s\"\n    shell: /bin/bash\n    lock_passwd: true\n", s->user);
	if (s->npackages) {
		fprintf(fp, "package_update: true\npackages:\n");
		for (size_t i = 0; i < s->npackages; i++)
			fprintf(fp, "  - \"%s\"\n", s->packages[i]);
	}
	if (s->windows)
		fprintf(fp, "set_hostname: \"%s\"\n", s->hostname);
	/*
	 * Last: the first boot ends by powering off, which tells vdi-tools the
	 * user VM is prepared.  cloud-init runs power_state once per instance;
	 * cloudbase-init has no power_state, but runs runcmd once per instance.
	 */
	if (s->poweroff && s->windows)
		fprintf(fp, "runcmd:\n  - \"shutdown /s /t 10 /c vdi-tools-prepared\"\n");
	else if (s->poweroff)
		fprintf(fp, "power_state:\n  mode: poweroff\n  message: \"vdi-tools: user VM prepared\"\n"
			"  condition: true\n");
	fclose(fp);
	return buf;
}

char *
vdi_seed_meta_data(const struct vdi_seed *s)
{
	FILE *fp;
	char *buf;
	size_t len;

	mem_printf(&fp, &buf, &len);
	if (!fp)
		return NULL;
	fprintf(fp, "instance-id: vdi-uservm-%lld\nlocal-hostname: \"%s\"\n", (long long)s->uservm_id, s->hostname);
	fclose(fp);
	return buf;
}

static int
write_file(const char *dir, const char *name, const char *text, struct vdi_err *err)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wex"); /* O_EXCL: never through anything planted */
	if (!fp)
		return vdi_err_set(err, VDI_EFAIL, "cannot write %s: %s", path, strerror(errno));
	fputs(text, fp);
	if (fclose(fp) != 0)
		return vdi_err_set(err, VDI_EFAIL, "cannot write %s: %s", path, strerror(errno));
	return 0;
}

/*
 * Remove /tmp/vdi-seed.PID.* folders of ours whose process is gone (a copy
 * killed while it built a seed).  Only plain folders owned by this uid,
 * holding only the files vdi_seed_build makes, are touched.
 */
static void
sweep_stale(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300];
		struct stat sb;
		long long pid;
		char *end;

		if (strncmp(e->d_name, "vdi-seed.", 9) != 0)
			continue;
		pid = strtoll(e->d_name + 9, &end, 10);
		if (pid <= 0 || *end != '.' || pid == (long long)getpid())
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
		if (lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
			continue;
		vdi_seed_cleanup(NULL, vdi_xstrdup(path));
	}
	closedir(d);
}

int
vdi_seed_build(const struct vdi_seed *s, char **iso, char **dir, struct vdi_err *err)
{
	char tmpl[64];
	char *ud = NULL, *md = NULL, *out = NULL, *errf = NULL, *udp = NULL, *mdp = NULL;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, rc, ret = -1;

	*iso = *dir = NULL;
	/* The pid in the name lets the next run clean up after a run that was killed. */
	sweep_stale();
	snprintf(tmpl, sizeof(tmpl), "/tmp/vdi-seed.%lld.XXXXXX", (long long)getpid());
	if (!mkdtemp(tmpl))
		return vdi_err_set(err, VDI_EFAIL, "cannot make a temporary folder: %s", strerror(errno));
	ud = vdi_seed_user_data(s);
	md = vdi_seed_meta_data(s);
	if (write_file(tmpl, "user-data", ud, err) < 0 || write_file(tmpl, "meta-data", md, err) < 0)
		goto out;
	if (asprintf(&out, "%s/seed.iso", tmpl) < 0 || asprintf(&errf, "%s/mkiso.err", tmpl) < 0 ||
	    asprintf(&udp, "%s/user-data", tmpl) < 0 || asprintf(&mdp, "%s/meta-data", tmpl) < 0)
		vdi_oom();
	{
		char *argv[] = { "genisoimage", "-quiet", "-output", out, "-volid", "cidata",
				 "-joliet", "-rock", udp, mdp, NULL };
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 1, errf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
		rc = posix_spawnp(&pid, "genisoimage", &fa, NULL, argv, environ);
		posix_spawn_file_actions_destroy(&fa);
	}
	if (rc != 0) {
		vdi_err_set(err, VDI_EFAIL, "cannot run genisoimage to build the seed image: %s", strerror(rc));
		goto out;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char line[256] = "";
		FILE *fp = fopen(errf, "re");
		if (fp) {
			if (!fgets(line, sizeof(line), fp))
				line[0] = '\0';
			fclose(fp);
		}
		line[strcspn(line, "\n")] = '\0';
		vdi_err_set(err, VDI_EFAIL, "genisoimage failed to build the seed image: %s", line);
		goto out;
	}
	*iso = out;
	out = NULL;
	*dir = vdi_xstrdup(tmpl);
	ret = 0;
out:
	if (ret < 0)
		vdi_seed_cleanup(NULL, vdi_xstrdup(tmpl));
	if (errf)
		unlink(errf);
	free(ud);
	free(md);
	free(out);
	free(errf);
	free(udp);
	free(mdp);
	return ret;
}

void
vdi_seed_cleanup(char *iso, char *dir)
{
	char path[4096];

	if (dir) {
		static const char *const files[] = { "user-data", "meta-data", "seed.iso", "mkiso.err", NULL };
		for (int i = 0; files[i]; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
			unlink(path);
		}
		rmdir(dir);
	}
	free(iso);
	free(dir);
}

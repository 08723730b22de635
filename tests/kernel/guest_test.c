// SPDX-License-Identifier: Apache-2.0
/*
 * guest_test - runs as the only program of a throwaway QEMU guest and
 * exercises ippoc_sensor.ko: load (good and bad parameters), the JSON
 * snapshot against /proc, partial reads and seeks, every command, bad,
 * oversized, out-of-bound and unprivileged writes, the rate limit, many
 * processes at once, unload while open, reload.
 *
 * Usage: guest_test /path/ippoc_sensor.ko
 * Prints "ok N - what" / "not ok N - what" and a closing
 * "guest: P passed, F failed"; exits 0 only when nothing failed.
 * Built static (gcc -static -pthread) so it needs nothing in the guest.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#define DEV "/dev/ippoc"
#define MOD "ippoc_sensor"

static int n_pass, n_fail;
static const char *ko_path;

static void check(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", cond ? "ok" : "not ok", n_pass + n_fail + 1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (cond)
		n_pass++;
	else
		n_fail++;
}

/* ---------------------------------------------------------------- JSON */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	int type;
	double num;
	char *str;		/* J_STR (decoded) */
	int n;			/* J_ARR / J_OBJ */
	char **keys;
	struct jv **vals;
};

static struct jv *jparse_value(const char **p, int depth);

static void jskip(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static char *jparse_string(const char **p)
{
	const char *s = *p;
	char *out, *o;

	if (*s != '"')
		return NULL;
	s++;
	out = o = malloc(strlen(s) + 1);
	while (*s && *s != '"') {
		unsigned char ch = *s++;

		if (ch < 0x20) {
			free(out);
			return NULL;
		}
		if (ch != '\\') {
			*o++ = ch;
			continue;
		}
		switch (*s++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'u': {
			unsigned int v;

			if (sscanf(s, "%4x", &v) != 1 || v > 0xff) {
				free(out);
				return NULL;	/* our module only escapes bytes */
			}
			*o++ = (char)v;
			s += 4;
			break;
		}
		default:
			free(out);
			return NULL;
		}
	}
	if (*s != '"') {
		free(out);
		return NULL;
	}
	*o = '\0';
	*p = s + 1;
	return out;
}

static struct jv *jnew(int type)
{
	struct jv *v = calloc(1, sizeof(*v));

	v->type = type;
	return v;
}

static void jfree(struct jv *v)
{
	if (!v)
		return;
	for (int i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jfree(v->vals[i]);
	}
	free(v->keys);
	free(v->vals);
	free(v->str);
	free(v);
}

static struct jv *jparse_container(const char **p, int depth, int obj)
{
	struct jv *v = jnew(obj ? J_OBJ : J_ARR);
	char close = obj ? '}' : ']';

	(*p)++;
	jskip(p);
	if (**p == close) {
		(*p)++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct jv *e;

		if (obj) {
			jskip(p);
			key = jparse_string(p);
			if (!key)
				goto bad;
			jskip(p);
			if (**p != ':') {
				free(key);
				goto bad;
			}
			(*p)++;
		}
		e = jparse_value(p, depth + 1);
		if (!e) {
			free(key);
			goto bad;
		}
		v->vals = realloc(v->vals, (v->n + 1) * sizeof(*v->vals));
		if (obj)
			v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
		if (obj)
			v->keys[v->n] = key;
		v->vals[v->n++] = e;
		jskip(p);
		if (**p == ',') {
			(*p)++;
			continue;
		}
		if (**p == close) {
			(*p)++;
			return v;
		}
		goto bad;
	}
bad:
	jfree(v);
	return NULL;
}

static struct jv *jparse_value(const char **p, int depth)
{
	struct jv *v;
	char *end;

	if (depth > 16)
		return NULL;
	jskip(p);
	switch (**p) {
	case '{':
		return jparse_container(p, depth, 1);
	case '[':
		return jparse_container(p, depth, 0);
	case '"':
		v = jnew(J_STR);
		v->str = jparse_string(p);
		if (!v->str) {
			free(v);
			return NULL;
		}
		return v;
	case 't':
	case 'f':
	case 'n':
		if (!strncmp(*p, "true", 4) || !strncmp(*p, "null", 4)) {
			v = jnew(**p == 'n' ? J_NULL : J_BOOL);
			v->num = **p == 't';
			*p += 4;
			return v;
		}
		if (!strncmp(*p, "false", 5)) {
			v = jnew(J_BOOL);
			*p += 5;
			return v;
		}
		return NULL;
	default:
		if (**p != '-' && !isdigit((unsigned char)**p))
			return NULL;
		v = jnew(J_NUM);
		v->num = strtod(*p, &end);
		if (end == *p) {
			free(v);
			return NULL;
		}
		*p = end;
		return v;
	}
}

/* Whole document: one object, then only "\n". */
static struct jv *jparse(const char *text)
{
	const char *p = text;
	struct jv *v = jparse_value(&p, 0);

	if (!v)
		return NULL;
	jskip(&p);
	if (*p || v->type != J_OBJ) {
		jfree(v);
		return NULL;
	}
	return v;
}

/* "a.b.c" through objects. */
static struct jv *jget(struct jv *v, const char *path)
{
	char buf[128], *save, *k;

	snprintf(buf, sizeof(buf), "%s", path);
	for (k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save)) {
		struct jv *next = NULL;

		if (v->type != J_OBJ)
			return NULL;
		for (int i = 0; i < v->n; i++)
			if (!strcmp(v->keys[i], k))
				next = v->vals[i];
		v = next;
	}
	return v;
}

static double jnum(struct jv *v, const char *path)
{
	struct jv *e = jget(v, path);

	return e && e->type == J_NUM ? e->num : -1;
}

/* ------------------------------------------------------------- helpers */

static int load(const char *params)
{
	int fd = open(ko_path, O_RDONLY | O_CLOEXEC), rc, err;

	if (fd < 0)
		return -errno;
	rc = syscall(SYS_finit_module, fd, params, 0);
	err = errno;
	close(fd);
	return rc ? -err : 0;
}

static int unload(void)
{
	return syscall(SYS_delete_module, MOD, O_NONBLOCK) ? -errno : 0;
}

static int dev_exists(void)
{
	struct stat st;

	for (int i = 0; i < 100; i++) {	/* devtmpfs may lag a little */
		if (stat(DEV, &st) == 0)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int dev_gone(void)
{
	struct stat st;

	for (int i = 0; i < 100; i++) {
		if (stat(DEV, &st) != 0 && errno == ENOENT)
			return 1;
		usleep(10000);
	}
	return 0;
}

/* Read the whole of fd from its current position in chunks of @chunk. */
static char *read_all(int fd, size_t chunk, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r;

	for (;;) {
		if (n + chunk > cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		r = read(fd, buf + n, chunk);
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static char *snapshot(size_t *len)
{
	int fd = open(DEV, O_RDONLY | O_CLOEXEC);
	char *s;

	if (fd < 0)
		return NULL;
	s = read_all(fd, 65536, len);
	close(fd);
	return s;
}

/* write one command; returns 0 or -errno */
static int cmd(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));

	if (r == (ssize_t)strlen(s))
		return 0;
	return r < 0 ? -errno : -EIO;
}

static int cmdf(int fd, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return cmd(fd, buf);
}

/* value of "Key:" in /proc/meminfo, bytes */
static double meminfo(const char *key)
{
	char line[256];
	double v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ':')
			v = strtod(line + strlen(key) + 1, NULL) * 1024;
	if (f)
		fclose(f);
	return v;
}

static double proc_stat(const char *key)
{
	char line[4096];
	double v = -1;
	FILE *f = fopen("/proc/stat", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)) && line[strlen(key)] == ' ')
			v = strtod(line + strlen(key) + 1, NULL);
	if (f)
		fclose(f);
	return v;
}

static double now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int count_procs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		if (isdigit((unsigned char)e->d_name[0]))
			n++;
	if (d)
		closedir(d);
	return n;
}

static pid_t spawn_burner(const char *comm)
{
	pid_t pid = fork();

	if (pid == 0) {
		volatile unsigned long x = 0;

		prctl(PR_SET_NAME, comm);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			x++;
	}
	return pid;
}

static void *sleeper_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static pid_t sleeper_tid;

/* A two-thread sleeping process; its second thread's tid is read back. */
static pid_t spawn_sleeper(void)
{
	int pfd[2];
	pid_t pid, tid = 0;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		pthread_t th;
		DIR *d;
		struct dirent *e;

		prctl(PR_SET_NAME, "ippoc-sleep");
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pthread_create(&th, NULL, sleeper_thread, NULL);
		usleep(100000);
		d = opendir("/proc/self/task");
		while (d && (e = readdir(d)))
			if (isdigit((unsigned char)e->d_name[0]) && atoi(e->d_name) != getpid())
				tid = atoi(e->d_name);
		if (write(pfd[1], &tid, sizeof(tid)) != sizeof(tid))
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &sleeper_tid, sizeof(sleeper_tid)) != sizeof(sleeper_tid))
		sleeper_tid = 0;
	close(pfd[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int prio(pid_t pid)
{
	errno = 0;
	return getpriority(PRIO_PROCESS, pid);
}

/* Drop CAP_SYS_ADMIN from the effective set, staying uid 0. */
static int drop_sys_admin(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	return syscall(SYS_capset, &h, d) ? -1 : 0;
}

/* Run @fn in a child; returns its exit status (0 = its checks passed). */
static int in_child(int (*fn)(void *), void *arg)
{
	int st;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

/* -------------------------------------------------------------- phases */

static void test_load_params(void)
{
	static const char *bad[] = {
		"top_n=65", "top_n=-1", "max_tasks=1", "nice_delta_min=-21", "nice_delta_max=20",
		"cmd_rate=0", "cmd_burst=100000", "dev_mode=0666", "dev_mode=0700",
		"min_interval_ms=1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = load(bad[i]);

		check(rc == -EINVAL, "load with %s refused (rc %d)", bad[i], rc);
		if (rc == 0)
			unload();
	}
	check(access(DEV, F_OK) != 0, "no %s after refused loads", DEV);
}

static void test_snapshot(pid_t burner, const char *odd_comm)
{
	size_t len;
	char *text = snapshot(&len);
	struct jv *j, *pc, *top;
	double v, ref;
	int online = sysconf(_SC_NPROCESSORS_ONLN), found_burner = 0, found_odd = 0;
	FILE *f;

	check(text && len > 100 && text[len - 1] == '\n', "read a snapshot (%zu bytes)", len);
	if (!text)
		return;
	j = jparse(text);
	check(j != NULL, "snapshot is one valid JSON object");
	printf("# snapshot %s", text);
	if (!j) {
		printf("# %s\n", text);
		free(text);
		return;
	}
	check(jnum(j, "schema") == 1, "schema 1");
	v = jnum(j, "timestamp_ns");
	ref = now_ns(CLOCK_REALTIME);
	check(v > 0 && ref - v >= -1e9 && ref - v < 5e9, "timestamp_ns near CLOCK_REALTIME");
	v = jnum(j, "uptime_ns");
	ref = now_ns(CLOCK_BOOTTIME);
	check(v > 0 && ref - v >= 0 && ref - v < 5e9, "uptime_ns near CLOCK_BOOTTIME");

	/* CPU */
	pc = jget(j, "cpu.per_cpu");
	check(pc && pc->type == J_ARR && pc->n == online && jnum(j, "cpu.online") == online,
	      "per_cpu has the %d online CPUs", online);
	if (pc && pc->type == J_ARR) {
		static const char *st[] = { "user", "nice", "system", "idle", "iowait", "irq",
					    "softirq", "steal", "guest", "guest_nice" };
		int all = 1;
		double sum_user = 0;

		for (int i = 0; i < pc->n; i++) {
			for (size_t k = 0; k < sizeof(st) / sizeof(st[0]); k++)
				if (jnum(pc->vals[i], st[k]) < 0)
					all = 0;
			sum_user += jnum(pc->vals[i], "user");
		}
		check(all, "every per_cpu entry has the 10 states");
		check(jnum(j, "cpu.total.user") >= sum_user,
		      "total user >= sum of online CPUs' user");
	}
	{
		/* /proc/stat "cpu" line is in USER_HZ (100/s) */
		double ours = jnum(j, "cpu.total.user") + jnum(j, "cpu.total.system") +
			      jnum(j, "cpu.total.idle");
		unsigned long long u, n, s, idle;

		f = fopen("/proc/stat", "r");
		if (f && fscanf(f, "cpu %llu %llu %llu %llu", &u, &n, &s, &idle) == 4) {
			ref = (u + s + idle) * 1e7;
			check(ours > 0 && ref - ours > -2e8 && ref - ours < 3e9 * online,
			      "cpu user+system+idle %.3fs matches /proc/stat %.3fs", ours / 1e9,
			      ref / 1e9);
		} else {
			check(0, "read /proc/stat");
		}
		if (f)
			fclose(f);
	}

	/* load */
	f = fopen("/proc/loadavg", "r");
	{
		double l1 = -1, l5, l15;
		int run, thr = -1, last = -1;

		if (f && fscanf(f, "%lf %lf %lf %d/%d %d", &l1, &l5, &l15, &run, &thr, &last) != 6)
			thr = -1;
		if (f)
			fclose(f);
		v = jnum(j, "load.load1");
		check(v >= 0 && v - l1 < 1.0 && l1 - v < 1.0, "load1 %.2f near /proc/loadavg %.2f",
		      v, l1);
		check(jnum(j, "load.load5") >= 0 && jnum(j, "load.load15") >= 0, "load5 load15");
		v = jnum(j, "tasks.threads");
		check(v > 0 && v - thr < 10 && thr - v < 10, "threads %.0f near %d", v, thr);
		v = jnum(j, "tasks.last_pid");
		check(v > 1 && v <= last && last - v < 20, "last_pid %.0f near %d", v, last);
	}

	/* memory */
	v = jnum(j, "memory.total_bytes");
	ref = meminfo("MemTotal");
	check(v > 0 && v == ref, "memory total %.0f == MemTotal %.0f", v, ref);
	v = jnum(j, "memory.free_bytes");
	ref = meminfo("MemFree");
	check(v > 0 && v - ref < 32e6 && ref - v < 32e6, "memory free near MemFree");
	v = jnum(j, "memory.available_bytes");
	ref = meminfo("MemAvailable");
	check(v > 0 && v - ref < 32e6 && ref - v < 32e6, "memory available near MemAvailable");
	v = jnum(j, "memory.cached_bytes");
	ref = meminfo("Cached");
	check(v >= 0 && v - ref < 16e6 && ref - v < 16e6, "memory cached %.0f near Cached %.0f",
	      v, ref);
	v = jnum(j, "memory.buffers_bytes");
	ref = meminfo("Buffers");
	check(v >= 0 && v - ref < 16e6 && ref - v < 16e6, "memory buffers near Buffers");
	check(jnum(j, "memory.swap_free_bytes") == meminfo("SwapFree"), "swap free == SwapFree");
	check(jnum(j, "memory.shared_bytes") >= 0, "memory shared present");

	/* tasks */
	v = jnum(j, "tasks.processes");
	ref = count_procs();
	check(v > 0 && v - ref < 10 && ref - v < 10, "processes %.0f near /proc's %.0f", v, ref);
	check(jnum(j, "tasks.kernel_threads") > 0 &&
	      jnum(j, "tasks.kernel_threads") < jnum(j, "tasks.processes"), "kernel_threads");
	check(jnum(j, "tasks.running") >= 1, "running >= 1");
	v = jnum(j, "tasks.context_switches_live");
	ref = proc_stat("ctxt");
	check(v > 0 && v <= ref, "context_switches_live %.0f <= ctxt %.0f", v, ref);

	/* top */
	top = jget(j, "top.processes");
	check(jnum(j, "top.interval_ns") > 0 && top && top->type == J_ARR && top->n <= 5,
	      "top list (%d entries, top_n=5)", top ? top->n : -1);
	for (int i = 0; top && top->type == J_ARR && i < top->n; i++) {
		struct jv *e = top->vals[i];
		struct jv *c = jget(e, "comm");

		if (jnum(e, "pid") == burner && jnum(e, "cpu_percent") > 30)
			found_burner = 1;
		if (c && c->type == J_STR && !strcmp(c->str, odd_comm))
			found_odd = 1;
		if (i > 0 && jnum(e, "cpu_ns") > jnum(top->vals[i - 1], "cpu_ns"))
			check(0, "top list sorted");
	}
	check(found_burner, "busy process %d in the top list above 30%%", burner);
	check(found_odd, "odd comm escaped and read back exactly");
	check(jget(j, "top_truncated") && jget(j, "top_truncated")->type == J_BOOL,
	      "top_truncated flag");
	jfree(j);
	free(text);
}

static void test_partial_reads(void)
{
	int fd = open(DEV, O_RDONLY);
	size_t la = 0, lb = 0, lc = 0;
	char *a, *b, *c, part[100];
	struct jv *j;

	check(fd >= 0, "open for partial reads");
	if (fd < 0)
		return;
	a = read_all(fd, 1, &la);
	check(lseek(fd, 0, SEEK_SET) == 0, "seek back to 0");
	b = read_all(fd, 7, &lb);
	check(a && b && la == lb && !memcmp(a, b, la), "1-byte and 7-byte reads give the same bytes");
	check(read(fd, part, sizeof(part)) == 0, "read at end returns 0");
	check(lseek(fd, 0, SEEK_END) == (off_t)la, "SEEK_END is the snapshot length");
	check(pread(fd, part, sizeof(part), 10) == sizeof(part) && a && !memcmp(part, a + 10, 100),
	      "pread at offset 10");
	check(lseek(fd, -1, SEEK_SET) < 0 && errno == EINVAL, "negative seek refused");
	check(lseek(fd, la + 1, SEEK_SET) < 0 && errno == EINVAL, "seek past end refused");
	lseek(fd, 0, SEEK_SET);
	c = read_all(fd, 4096, &lc);
	check(c && lc == la && !memcmp(a, c, la), "same snapshot after reseek");
	j = a ? jparse(a) : NULL;
	check(j != NULL, "byte-by-byte read parses");
	jfree(j);
	check(write(fd, "ping", 4) < 0 && errno == EBADF, "write on read-only fd: EBADF");
	close(fd);
	free(a);
	free(b);
	free(c);
}

static int child_unpriv_write(void *arg)
{
	int fd = *(int *)arg;

	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 2;
	if (write(fd, "ping", 4) >= 0 || errno != EPERM)
		return 3;
	if (open(DEV, O_RDONLY) >= 0 || errno != EACCES)
		return 4;
	return 0;
}

static int child_unpriv_open(void *arg)
{
	int fd;

	(void)arg;
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 2;
	fd = open(DEV, O_RDWR);
	if (fd < 0)
		return 3;
	if (write(fd, "ping", 4) >= 0 || errno != EPERM)
		return 4;
	return 0;
}

static int child_nocap_write(void *arg)
{
	int fd = *(int *)arg;

	if (drop_sys_admin())
		return 2;
	return write(fd, "ping", 4) < 0 && errno == EPERM ? 0 : 3;
}

static void test_commands(pid_t sleeper)
{
	int fd = open(DEV, O_WRONLY), rc;
	char big[70000], buf[16];
	struct stat st;
	static const char *bad[] = {
		"", "\n", "ping\n\n", " ping", "ping ", "PING", "ping x", "pong", "nice",
		"nice 5", "nice  %d 1", "nice %d  1", "nice %d 1 1", "nice %d 1 ", "nice abc 1",
		"nice %d abc", "nice %d 1.5", "nice 0x10 1", "nice -3 1", "nice +%d 1",
		"nice 0 1", "nice 99999999999 1", "nice 4194305 1", "nice %d 20", "nice %d -6",
		"nice %d 99999999999", "nice %d\t1", "nice\t%d 1", "freeze", "freeze %d %d",
		"thaw abc", "nice %d 1\r", "\xff\xfe", "ping\x01",
	};

	check(fd >= 0, "open write-only");
	if (fd < 0)
		return;
	check(read(fd, buf, sizeof(buf)) < 0 && errno == EBADF, "read on write-only fd: EBADF");
	check(cmd(fd, "ping") == 0, "ping");
	check(cmd(fd, "ping\n") == 0, "ping with newline");

	check(prio(sleeper) == 0 && prio(sleeper_tid) == 0, "sleeper starts at nice 0");
	rc = cmdf(fd, "nice %d 5", sleeper);
	check(rc == 0 && prio(sleeper) == 5, "nice +5 applied (rc %d, nice %d)", rc, prio(sleeper));
	check(sleeper_tid > 0 && prio(sleeper_tid) == 5, "nice applied to the second thread too");
	check(cmdf(fd, "nice %d -3\n", sleeper) == 0 && prio(sleeper) == 2, "nice -3 applied");
	check(cmdf(fd, "nice %d 19", sleeper) == 0 && prio(sleeper) == 19, "nice clamped at 19");
	check(cmdf(fd, "nice %d -5", sleeper) == 0 && prio(sleeper) == 14, "nice -5 from 19");
	check(cmdf(fd, "nice %d -5", sleeper_tid) == 0 && prio(sleeper) == 9,
	      "nice by thread id acts on its process");

	rc = cmd(fd, "nice 1 1");
	check(rc == -EPERM && prio(1) == 0, "pid 1 refused (rc %d)", rc);
	rc = cmd(fd, "nice 2 1");
	check(rc == -EPERM && prio(2) == 0, "kernel thread refused (rc %d)", rc);
	rc = cmdf(fd, "nice %d 1", getpid());
	check(rc == -EPERM && prio(0) == 0, "own process refused (rc %d)", rc);
	rc = cmd(fd, "nice 4194000 1");
	check(rc == -ESRCH, "missing pid: ESRCH (rc %d)", rc);
	rc = cmdf(fd, "freeze %d", sleeper);
	check(rc == -EOPNOTSUPP, "freeze: EOPNOTSUPP (rc %d)", rc);
	rc = cmdf(fd, "thaw %d", sleeper);
	check(rc == -EOPNOTSUPP, "thaw: EOPNOTSUPP (rc %d)", rc);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[128];

		snprintf(line, sizeof(line), bad[i], sleeper, sleeper);
		rc = strlen(line) ? cmd(fd, line) : (write(fd, "", 0) < 0 ? -errno : 0);
		check(rc == -EINVAL || (!*line && rc == 0), "malformed '%s' refused (rc %d)",
		      bad[i], rc);
	}
	check(write(fd, "nice 1\0 1", 9) < 0 && errno == EINVAL, "embedded NUL refused");
	check(prio(sleeper) == 9, "malformed commands changed nothing");
	memset(big, 'a', sizeof(big));
	memcpy(big, "ping ", 5);
	check(write(fd, big, 65) < 0 && errno == EINVAL, "65-byte write refused");
	check(write(fd, big, 4096) < 0 && errno == EINVAL, "4 KiB write refused");
	check(write(fd, big, sizeof(big)) < 0 && errno == EINVAL, "70 KB write refused");
	memset(big, ' ', 64);
	memcpy(big, "ping", 4);
	check(write(fd, big, 64) < 0 && errno == EINVAL, "64-byte padded ping refused");
	rc = syscall(SYS_write, fd, (void *)8, 4) < 0 ? -errno : 0;
	check(rc == -EFAULT, "bad user pointer: EFAULT (rc %d)", rc);

	rc = in_child(child_unpriv_write, &fd);
	check(rc == 0, "unprivileged writer on root's fd refused, open refused (%d)", rc);
	rc = in_child(child_nocap_write, &fd);
	check(rc == 0, "root without CAP_SYS_ADMIN refused (%d)", rc);
	check(stat(DEV, &st) == 0 && (st.st_mode & 0777) == 0600 && S_ISCHR(st.st_mode),
	      "%s is a char device of mode 0600", DEV);
	chmod(DEV, 0666);
	rc = in_child(child_unpriv_open, NULL);
	check(rc == 0, "unprivileged opener of a 0666 node still refused (%d)", rc);
	chmod(DEV, 0600);
	check(prio(sleeper) == 9 && prio(1) == 0, "refused writes changed nothing");
	close(fd);
}

static void test_rate_limit(void)
{
	int fd = open(DEV, O_WRONLY), ok = 0, again = 0, rc;

	for (int i = 0; i < 10; i++) {
		rc = cmd(fd, "ping");
		ok += rc == 0;
		again += rc == -EAGAIN;
	}
	check(ok == 3 && again == 7, "burst 3: %d accepted, %d EAGAIN", ok, again);
	usleep(1200000);
	check(cmd(fd, "ping") == 0, "accepted again after a second");
	usleep(1200000);
	rc = cmdf(fd, "nice %d 1", getpid());
	check(rc == 0 && prio(0) == 1, "allow_self=1 lets the writer renice itself (rc %d)", rc);
	close(fd);
}

struct hammer_arg {
	int id;
	pid_t sleeper;
	double until;
};

static int hammer(void *p)
{
	struct hammer_arg *a = p;
	unsigned int seed = a->id * 7919;
	int bad = 0, iters = 0;

	while (now_ns(CLOCK_MONOTONIC) < a->until) {
		int fd = open(DEV, O_RDWR);
		size_t len;
		char *s;
		struct jv *j;
		int rc;

		if (fd < 0) {
			bad++;
			break;
		}
		s = read_all(fd, 1 + rand_r(&seed) % 300, &len);
		j = s ? jparse(s) : NULL;
		if (!j)
			bad++;
		jfree(j);
		free(s);
		rc = cmd(fd, "ping");
		if (rc && rc != -EAGAIN)
			bad++;
		rc = cmdf(fd, "nice %d 0", a->sleeper);
		if (rc && rc != -EAGAIN)
			bad++;
		if (cmd(fd, "nice garbage") != -EINVAL)
			bad++;
		close(fd);
		iters++;
	}
	printf("# hammer %d: %d rounds, %d bad\n", a->id, iters, bad);
	return bad ? 1 : 0;
}

static void *thread_churn(void *arg)
{
	(void)arg;
	return NULL;
}

static int churn(void *p)
{
	struct hammer_arg *a = p;

	while (now_ns(CLOCK_MONOTONIC) < a->until) {
		pid_t pid = fork();
		pthread_t th;

		if (pid == 0) {
			pthread_create(&th, NULL, thread_churn, NULL);
			pthread_join(th, NULL);
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	return 0;
}

static void test_concurrency(pid_t sleeper)
{
	enum { HAMMERS = 4 };
	struct hammer_arg a[HAMMERS + 1];
	pid_t pids[HAMMERS + 1];
	int fails = 0, st;
	double until = now_ns(CLOCK_MONOTONIC) + 3e9;

	for (int i = 0; i <= HAMMERS; i++) {
		a[i] = (struct hammer_arg){ .id = i, .sleeper = sleeper, .until = until };
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(i < HAMMERS ? hammer(&a[i]) : churn(&a[i]));
	}
	for (int i = 0; i <= HAMMERS; i++)
		if (waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			fails++;
	check(fails == 0, "%d processes reading, writing, forking at once for 3 s", HAMMERS + 1);
}

static void test_unload_reload(void)
{
	int fd = open(DEV, O_RDONLY), rc;

	rc = unload();
	check(rc == -EBUSY || rc == -EAGAIN || rc == -EWOULDBLOCK,
	      "unload while open refused (rc %d)", rc);
	close(fd);
	rc = unload();
	check(rc == 0 && dev_gone(), "unload after close (rc %d)", rc);
	for (int i = 0; i < 5; i++) {
		rc = load("");
		if (rc == 0 && dev_exists()) {
			size_t len;
			char *s = snapshot(&len);
			struct jv *j = s ? jparse(s) : NULL;

			rc = j ? unload() : -EIO;
			jfree(j);
			free(s);
		}
		if (rc)
			break;
	}
	check(rc == 0, "5 load / read / unload cycles (rc %d)", rc);
	check(dev_gone(), "device gone at the end");
}

int main(int argc, char **argv)
{
	static const char odd_comm[] = "q\"b\\c\x01";
	pid_t burner, odd, sleeper;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s ippoc_sensor.ko\n", argv[0]);
		return 2;
	}
	ko_path = argv[1];

	test_load_params();
	rc = load("top_n=5 cmd_rate=1000 cmd_burst=1000 min_interval_ms=100");
	check(rc == 0 && dev_exists(), "load %s (rc %d)", ko_path, rc);
	if (rc)
		goto out;

	burner = spawn_burner("ippoc-burn");
	odd = spawn_burner(odd_comm);
	sleeper = spawn_sleeper();
	usleep(1500000);
	test_snapshot(burner, odd_comm);
	reap(burner);
	reap(odd);
	test_partial_reads();
	test_commands(sleeper);

	rc = unload();
	check(rc == 0 && dev_gone(), "unload (rc %d)", rc);
	rc = load("cmd_rate=1 cmd_burst=3 allow_self=1");
	check(rc == 0 && dev_exists(), "reload with cmd_rate=1 cmd_burst=3 allow_self=1 (rc %d)",
	      rc);
	if (rc)
		goto out;
	test_rate_limit();
	test_concurrency(sleeper);
	test_unload_reload();
	reap(sleeper);
out:
	printf("guest: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}

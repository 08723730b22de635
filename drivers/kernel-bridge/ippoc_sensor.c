// SPDX-License-Identifier: GPL-2.0-only
/*
 * ippoc_sensor - /dev/ippoc, the IPPOC cell's kernel bridge.
 *
 * read():  one JSON object per open file: a snapshot of the system taken
 *          inside the kernel when the file is opened for reading (CPU time
 *          by state, load, memory, task counts, top processes by CPU over
 *          the last interval).  The snapshot lives in a buffer of bounded
 *          size owned by the open file, so partial reads and seeks always
 *          see the same bytes.
 * write(): one bounded command per write ("ping", "nice <pid> <delta>",
 *          "freeze <pid>", "thaw <pid>").  Commands need CAP_SYS_ADMIN both
 *          in the opener and in the writer, are parsed strictly, are
 *          rate-limited and are logged.  Anything else fails with -EINVAL
 *          and has no side effect.
 *
 * Only exported kernel interfaces are used.  Counters the kernel does not
 * export to modules (total forks, global context switches, swap total) are
 * not faked: the snapshot says what it reports instead (see README.md).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kernel_stat.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/loadavg.h>
#include <linux/sched/prio.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/seq_buf.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/swap.h>
#include <linux/tick.h>
#include <linux/uaccess.h>
#include <linux/vmstat.h>

#define IPPOC_SCHEMA		1
#define IPPOC_CMD_MAX		64	/* longest accepted write, bytes */
#define IPPOC_TOP_MAX		64	/* upper bound of top_n */
#define IPPOC_TASKS_MIN		16
#define IPPOC_TASKS_MAX		131072	/* upper bound of max_tasks */

/* ---- module parameters (read-only after load, checked in init) ---- */

static int top_n = 10;
module_param(top_n, int, 0444);
MODULE_PARM_DESC(top_n, "processes listed in the snapshot's top list (0..64, default 10)");

static int max_tasks = 8192;
module_param(max_tasks, int, 0444);
MODULE_PARM_DESC(max_tasks, "processes tracked for the top list (16..131072, default 8192)");

static int min_interval_ms = 250;
module_param(min_interval_ms, int, 0444);
MODULE_PARM_DESC(min_interval_ms,
		 "shortest interval the top list is computed over (10..60000, default 250)");

static int nice_delta_min = -5;
module_param(nice_delta_min, int, 0444);
MODULE_PARM_DESC(nice_delta_min, "most negative accepted nice delta (-20..0, default -5)");

static int nice_delta_max = 19;
module_param(nice_delta_max, int, 0444);
MODULE_PARM_DESC(nice_delta_max, "most positive accepted nice delta (0..19, default 19)");

static int cmd_rate = 5;
module_param(cmd_rate, int, 0444);
MODULE_PARM_DESC(cmd_rate, "commands accepted per second, sustained (1..1000, default 5)");

static int cmd_burst = 10;
module_param(cmd_burst, int, 0444);
MODULE_PARM_DESC(cmd_burst, "commands accepted in a burst (1..1000, default 10)");

static bool allow_self;
module_param(allow_self, bool, 0444);
MODULE_PARM_DESC(allow_self, "let commands target the writer's own process (default N)");

static ushort dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "mode of /dev/ippoc (no execute or other-write bits, default 0600)");

/* ---- per-process CPU samples for the top list ---- */

struct ippoc_sample {
	pid_t tgid;		/* in the initial pid namespace */
	u64 start_time;		/* tells a reused pid from the same process */
	u64 runtime;		/* ns, all threads, live and exited */
};

struct ippoc_top {
	pid_t tgid;		/* in the initial pid namespace */
	u64 delta;		/* ns of CPU over the interval */
	int nice;
	int threads;
	char comm[TASK_COMM_LEN];
};

struct ippoc_counts {
	u64 ctxsw;
	unsigned int processes;
	unsigned int threads;
	unsigned int kthreads;
	unsigned int running;
	bool truncated;
};

/*
 * Everything below is protected by ippoc_lock.  The sample tables are
 * allocated once at load time; nothing here grows afterwards.
 */
static DEFINE_MUTEX(ippoc_lock);
static struct ippoc_sample *ippoc_prev, *ippoc_cur;
static unsigned int ippoc_prev_n;
static u64 ippoc_prev_time;		/* boottime ns of ippoc_prev */
static struct ippoc_top ippoc_top_cache[IPPOC_TOP_MAX];
static unsigned int ippoc_top_cache_n;
static u64 ippoc_top_interval;		/* ns covered by ippoc_top_cache */

static int ippoc_sample_cmp(const void *a, const void *b)
{
	const struct ippoc_sample *x = a, *y = b;

	return (x->tgid > y->tgid) - (x->tgid < y->tgid);
}

/*
 * Walk every task once under RCU: fill @tab (at most max_tasks processes,
 * sorted by tgid afterwards) and the global counts.  Never sleeps inside
 * the walk and never allocates.
 */
static unsigned int ippoc_walk(struct ippoc_sample *tab, struct ippoc_counts *c)
{
	struct task_struct *p, *t;
	unsigned int n = 0;

	memset(c, 0, sizeof(*c));
	rcu_read_lock();
	for_each_process(p) {
		struct signal_struct *sig = p->signal;
		u64 runtime = READ_ONCE(sig->sum_sched_runtime);

		c->ctxsw += READ_ONCE(sig->nvcsw) + READ_ONCE(sig->nivcsw);
		c->processes++;
		if (p->flags & PF_KTHREAD)
			c->kthreads++;
		for_each_thread(p, t) {
			c->threads++;
			runtime += READ_ONCE(t->se.sum_exec_runtime);
			c->ctxsw += READ_ONCE(t->nvcsw) + READ_ONCE(t->nivcsw);
			if (task_is_running(t))
				c->running++;
		}
		if (p->flags & PF_KTHREAD)
			continue;	/* kernel threads are never in the top list */
		if (n >= max_tasks) {
			c->truncated = true;
			continue;
		}
		tab[n].tgid = p->tgid;
		tab[n].start_time = p->start_time;
		tab[n].runtime = runtime;
		n++;
	}
	rcu_read_unlock();
	sort(tab, n, sizeof(*tab), ippoc_sample_cmp, NULL);
	return n;
}

/* Insert @e into the descending top list @top of @n (< top_n or full). */
static void ippoc_top_insert(struct ippoc_top *top, unsigned int *n, pid_t tgid, u64 delta)
{
	unsigned int i, limit = top_n;

	if (*n == limit && (limit == 0 || delta <= top[limit - 1].delta))
		return;
	i = *n < limit ? (*n)++ : limit - 1;
	while (i > 0 && top[i - 1].delta < delta) {
		top[i] = top[i - 1];
		i--;
	}
	top[i].tgid = tgid;
	top[i].delta = delta;
}

/* Merge ippoc_prev and ippoc_cur (both sorted by tgid) into the top cache. */
static void ippoc_top_compute(unsigned int cur_n, u64 now)
{
	unsigned int i, j = 0, n = 0;

	for (i = 0; i < cur_n; i++) {
		const struct ippoc_sample *c = &ippoc_cur[i];
		u64 delta;

		while (j < ippoc_prev_n && ippoc_prev[j].tgid < c->tgid)
			j++;
		if (j < ippoc_prev_n && ippoc_prev[j].tgid == c->tgid &&
		    ippoc_prev[j].start_time == c->start_time)
			delta = c->runtime > ippoc_prev[j].runtime ?
				c->runtime - ippoc_prev[j].runtime : 0;
		else if (c->start_time >= ippoc_prev_time)
			delta = c->runtime;	/* born during the interval */
		else
			continue;		/* was not tracked last time */
		if (delta)
			ippoc_top_insert(ippoc_top_cache, &n, c->tgid, delta);
	}

	/* Fill in what a reader shows; a process gone meanwhile is dropped. */
	rcu_read_lock();
	for (i = 0, j = 0; i < n; i++) {
		struct ippoc_top *e = &ippoc_top_cache[i];
		struct task_struct *p;

		p = pid_task(find_pid_ns(e->tgid, &init_pid_ns), PIDTYPE_TGID);
		if (!p)
			continue;
		e->nice = task_nice(p);
		e->threads = get_nr_threads(p);
		__get_task_comm(e->comm, sizeof(e->comm), p);
		ippoc_top_cache[j++] = *e;
	}
	rcu_read_unlock();
	ippoc_top_cache_n = j;
	ippoc_top_interval = now - ippoc_prev_time;
}

/* ---- the snapshot ---- */

/* ippoc_puts() and ippoc_putc() are not exported to modules in 6.1. */
#define ippoc_puts(s, str)	seq_buf_printf(s, "%s", str)
#define ippoc_putc(s, ch)	seq_buf_printf(s, "%c", ch)

struct ippoc_snap {
	size_t len;
	char data[];
};

static const char * const ippoc_cpu_state[NR_STATS] = {
	[CPUTIME_USER] = "user",	[CPUTIME_NICE] = "nice",
	[CPUTIME_SYSTEM] = "system",	[CPUTIME_SOFTIRQ] = "softirq",
	[CPUTIME_IRQ] = "irq",		[CPUTIME_IDLE] = "idle",
	[CPUTIME_IOWAIT] = "iowait",	[CPUTIME_STEAL] = "steal",
	[CPUTIME_GUEST] = "guest",	[CPUTIME_GUEST_NICE] = "guest_nice",
};

/* One CPU's times in ns, idle and iowait as /proc/stat computes them. */
static void ippoc_cpu_fetch(int cpu, u64 *v)
{
	struct kernel_cpustat kcs;
	u64 us = -1ULL;
	int i;

	kcpustat_cpu_fetch(&kcs, cpu);
	for (i = 0; i < NR_STATS; i++)
		v[i] = kcs.cpustat[i];
	if (cpu_online(cpu))
		us = get_cpu_idle_time_us(cpu, NULL);
	if (us != -1ULL)
		v[CPUTIME_IDLE] = us * NSEC_PER_USEC;
	us = -1ULL;
	if (cpu_online(cpu))
		us = get_cpu_iowait_time_us(cpu, NULL);
	if (us != -1ULL)
		v[CPUTIME_IOWAIT] = us * NSEC_PER_USEC;
}

static void ippoc_put_cpu(struct seq_buf *s, const u64 *v)
{
	int i;

	for (i = 0; i < NR_STATS; i++)
		if (ippoc_cpu_state[i])
			seq_buf_printf(s, ",\"%s\":%llu", ippoc_cpu_state[i], v[i]);
}

static void ippoc_put_cpus(struct seq_buf *s)
{
	u64 v[NR_STATS], total[NR_STATS] = { 0 };
	unsigned int online = 0;
	bool first = true;
	int cpu, i;

	ippoc_puts(s, "\"cpu\":{\"per_cpu\":[");
	for_each_possible_cpu(cpu) {
		ippoc_cpu_fetch(cpu, v);
		for (i = 0; i < NR_STATS; i++)
			total[i] += v[i];
		if (!cpu_online(cpu))
			continue;
		online++;
		seq_buf_printf(s, "%s{\"cpu\":%d", first ? "" : ",", cpu);
		ippoc_put_cpu(s, v);
		ippoc_putc(s, '}');
		first = false;
	}
	seq_buf_printf(s, "],\"online\":%u,\"total\":{\"cpus\":%u", online, num_possible_cpus());
	ippoc_put_cpu(s, total);
	ippoc_puts(s, "}}");
}

static void ippoc_put_load(struct seq_buf *s)
{
	unsigned long a[3];
	int i;

	for (i = 0; i < 3; i++)
		a[i] = READ_ONCE(avenrun[i]) + FIXED_1 / 200;
	seq_buf_printf(s, ",\"load\":{\"load1\":%lu.%02lu", LOAD_INT(a[0]), LOAD_FRAC(a[0]));
	seq_buf_printf(s, ",\"load5\":%lu.%02lu", LOAD_INT(a[1]), LOAD_FRAC(a[1]));
	seq_buf_printf(s, ",\"load15\":%lu.%02lu}", LOAD_INT(a[2]), LOAD_FRAC(a[2]));
}

static void ippoc_put_memory(struct seq_buf *s)
{
	struct sysinfo i;
	long cached;
	u64 unit;

	si_meminfo(&i);
	unit = i.mem_unit;
	cached = global_node_page_state(NR_FILE_PAGES) -
		 global_node_page_state(NR_SWAPCACHE) - i.bufferram;
	if (cached < 0)
		cached = 0;
	seq_buf_printf(s, ",\"memory\":{\"total_bytes\":%llu", i.totalram * unit);
	seq_buf_printf(s, ",\"free_bytes\":%llu", i.freeram * unit);
	seq_buf_printf(s, ",\"available_bytes\":%llu,\"cached_bytes\":%llu,\"buffers_bytes\":%llu",
		       (u64)si_mem_available() << PAGE_SHIFT, (u64)cached << PAGE_SHIFT,
		       i.bufferram * unit);
	seq_buf_printf(s, ",\"shared_bytes\":%llu,\"swap_free_bytes\":%llu}", i.sharedram * unit,
		       (u64)max(get_nr_swap_pages(), 0L) << PAGE_SHIFT);
}

/* A comm as a JSON string: any byte outside printable ASCII is escaped. */
static void ippoc_put_str(struct seq_buf *s, const char *str)
{
	ippoc_putc(s, '"');
	for (; *str; str++) {
		unsigned char ch = *str;

		if (ch == '"' || ch == '\\')
			seq_buf_printf(s, "\\%c", ch);
		else if (ch < 0x20 || ch > 0x7e)
			seq_buf_printf(s, "\\u%04x", ch);
		else
			ippoc_putc(s, ch);
	}
	ippoc_putc(s, '"');
}

static void ippoc_put_top(struct seq_buf *s, struct pid_namespace *ns)
{
	bool first = true;
	unsigned int i;

	seq_buf_printf(s, ",\"top\":{\"interval_ns\":%llu,\"processes\":[", ippoc_top_interval);
	rcu_read_lock();
	for (i = 0; i < ippoc_top_cache_n; i++) {
		const struct ippoc_top *e = &ippoc_top_cache[i];
		pid_t nr = pid_nr_ns(find_pid_ns(e->tgid, &init_pid_ns), ns);
		u64 pct;

		if (!nr)	/* gone, or not visible from the reader's namespace */
			continue;
		pct = ippoc_top_interval ?
		      mul_u64_u64_div_u64(e->delta, 10000, ippoc_top_interval) : 0;
		seq_buf_printf(s, "%s{\"pid\":%d,\"comm\":", first ? "" : ",", nr);
		ippoc_put_str(s, e->comm);
		seq_buf_printf(s, ",\"cpu_percent\":%llu.%02llu,\"cpu_ns\":%llu", pct / 100,
			       pct % 100, e->delta);
		seq_buf_printf(s, ",\"nice\":%d,\"threads\":%d}", e->nice, e->threads);
		first = false;
	}
	rcu_read_unlock();
	ippoc_puts(s, "]}");
}

static size_t ippoc_snap_size(void)
{
	/* header + one object per CPU and the total + escaped top entries */
	return 2048 + (nr_cpu_ids + 1) * 384 + top_n * 288;
}

static struct ippoc_snap *ippoc_snapshot(void)
{
	struct pid_namespace *ns = task_active_pid_ns(current);
	size_t size = ippoc_snap_size();
	struct ippoc_counts c;
	struct ippoc_snap *snap;
	struct seq_buf s;
	unsigned int n;
	u64 now;
	int err;

	snap = kvmalloc(struct_size(snap, data, size), GFP_KERNEL_ACCOUNT);
	if (!snap)
		return ERR_PTR(-ENOMEM);
	seq_buf_init(&s, snap->data, size);

	err = mutex_lock_killable(&ippoc_lock);
	if (err) {
		kvfree(snap);
		return ERR_PTR(err);
	}
	n = ippoc_walk(ippoc_cur, &c);
	now = ktime_get_boottime_ns();
	if (now - ippoc_prev_time >= (u64)min_interval_ms * NSEC_PER_MSEC) {
		ippoc_top_compute(n, now);
		swap(ippoc_prev, ippoc_cur);
		ippoc_prev_n = n;
		ippoc_prev_time = now;
	}

	seq_buf_printf(&s, "{\"schema\":%d,\"timestamp_ns\":%llu,\"uptime_ns\":%llu,",
		       IPPOC_SCHEMA, ktime_get_real_ns(), now);
	ippoc_put_cpus(&s);
	ippoc_put_load(&s);
	ippoc_put_memory(&s);
	seq_buf_printf(&s, ",\"tasks\":{\"processes\":%u,\"threads\":%u,\"kernel_threads\":%u",
		       c.processes, c.threads, c.kthreads);
	seq_buf_printf(&s, ",\"running\":%u,\"context_switches_live\":%llu,\"last_pid\":%d}",
		       c.running, c.ctxsw, idr_get_cursor(&ns->idr) - 1);
	ippoc_put_top(&s, ns);
	seq_buf_printf(&s, ",\"top_truncated\":%s}\n", c.truncated ? "true" : "false");
	mutex_unlock(&ippoc_lock);

	if (seq_buf_has_overflowed(&s)) {
		kvfree(snap);
		return ERR_PTR(-EOVERFLOW);
	}
	snap->len = seq_buf_used(&s);
	return snap;
}

/* ---- commands ---- */

static DEFINE_SPINLOCK(ippoc_rl_lock);
static u64 ippoc_rl_tokens;	/* token units of NSEC_PER_SEC */
static u64 ippoc_rl_last;	/* boottime ns of the last refill */

/* Token bucket: cmd_rate per second, at most cmd_burst at once. */
static bool ippoc_rate_ok(void)
{
	u64 cap = (u64)cmd_burst * NSEC_PER_SEC, now, elapsed;
	bool ok = false;

	spin_lock(&ippoc_rl_lock);
	now = ktime_get_boottime_ns();
	elapsed = now - ippoc_rl_last;
	ippoc_rl_last = now;
	if (elapsed >= cap)	/* refilled for sure; also avoids overflow below */
		ippoc_rl_tokens = cap;
	else
		ippoc_rl_tokens = min(cap, ippoc_rl_tokens + elapsed * cmd_rate);
	if (ippoc_rl_tokens >= NSEC_PER_SEC) {
		ippoc_rl_tokens -= NSEC_PER_SEC;
		ok = true;
	}
	spin_unlock(&ippoc_rl_lock);
	return ok;
}

/* A process id: decimal, 1..PID_MAX_LIMIT, no sign. */
static int ippoc_parse_pid(const char *tok, pid_t *pid)
{
	int v;

	if (!tok || !isdigit(tok[0]) || kstrtoint(tok, 10, &v) || v < 1 || v > PID_MAX_LIMIT)
		return -EINVAL;
	*pid = v;
	return 0;
}

/*
 * Renice every thread of the process that thread @nr (in the writer's pid
 * namespace) belongs to, each by @delta, clamped to MIN_NICE..MAX_NICE.
 */
static int ippoc_do_nice(pid_t nr, int delta)
{
	struct pid *pid = find_get_pid(nr);
	struct task_struct *p, *t;
	char comm[TASK_COMM_LEN];
	int err = 0, before;

	p = pid ? get_pid_task(pid, PIDTYPE_PID) : NULL;
	put_pid(pid);
	if (!p)
		return -ESRCH;
	if ((p->flags & PF_KTHREAD) || is_global_init(p) || task_tgid_vnr(p) == 1 ||
	    (!allow_self && same_thread_group(p, current))) {
		err = -EPERM;
		goto out;
	}
	if (delta < 0 && !capable(CAP_SYS_NICE)) {
		err = -EPERM;
		goto out;
	}
	if (p->flags & PF_EXITING) {
		err = -ESRCH;
		goto out;
	}
	if (!ippoc_rate_ok()) {
		err = -EAGAIN;
		goto out;
	}
	before = task_nice(p);
	rcu_read_lock();
	for_each_thread(p, t)
		set_user_nice(t, clamp(task_nice(t) + delta, MIN_NICE, MAX_NICE));
	rcu_read_unlock();
	__get_task_comm(comm, sizeof(comm), p);
	pr_info("nice pid %d (%*pE) %+d: %d -> %d, by pid %d uid %u\n", nr,
		(int)strnlen(comm, sizeof(comm)), comm, delta, before, task_nice(p),
		task_tgid_vnr(current), from_kuid(&init_user_ns, current_uid()));
out:
	put_task_struct(p);
	return err;
}

/*
 * Split @buf (NUL-terminated, printable ASCII only) into at most @max
 * tokens separated by exactly one space.  Returns the count or -EINVAL.
 */
static int ippoc_tokens(char *buf, char **tok, int max)
{
	int n = 0;
	char *s;

	while ((s = strsep(&buf, " ")) != NULL) {
		if (!*s || n == max)
			return -EINVAL;
		tok[n++] = s;
	}
	return n;
}

static int ippoc_command(char *buf)
{
	char *tok[3];
	pid_t pid;
	int n, delta;

	n = ippoc_tokens(buf, tok, ARRAY_SIZE(tok));
	if (n < 1)
		return -EINVAL;

	if (!strcmp(tok[0], "ping") && n == 1) {
		if (!ippoc_rate_ok())
			return -EAGAIN;
		pr_info("ping, by pid %d uid %u\n", task_tgid_vnr(current),
			from_kuid(&init_user_ns, current_uid()));
		return 0;
	}
	if (!strcmp(tok[0], "nice") && n == 3) {
		if (ippoc_parse_pid(tok[1], &pid) || kstrtoint(tok[2], 10, &delta) ||
		    delta < nice_delta_min || delta > nice_delta_max)
			return -EINVAL;
		return ippoc_do_nice(pid, delta);
	}
	if ((!strcmp(tok[0], "freeze") || !strcmp(tok[0], "thaw")) && n == 2) {
		if (ippoc_parse_pid(tok[1], &pid))
			return -EINVAL;
		/* The cgroup freezer has no interface exported to modules. */
		return -EOPNOTSUPP;
	}
	return -EINVAL;
}

static ssize_t ippoc_write(struct file *file, const char __user *ubuf, size_t count,
			   loff_t *ppos)
{
	char buf[IPPOC_CMD_MAX + 1];
	size_t i, len = count;
	int err;

	if (!file_ns_capable(file, &init_user_ns, CAP_SYS_ADMIN) || !capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (count == 0 || count > IPPOC_CMD_MAX)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	if (buf[len - 1] == '\n')
		len--;
	buf[len] = '\0';
	for (i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
			return -EINVAL;
	err = ippoc_command(buf);
	return err ? err : count;
}

/* ---- file operations ---- */

static int ippoc_open(struct inode *inode, struct file *file)
{
	struct ippoc_snap *snap = NULL;

	if (file->f_mode & FMODE_READ) {
		snap = ippoc_snapshot();
		if (IS_ERR(snap))
			return PTR_ERR(snap);
	}
	file->private_data = snap;
	return 0;
}

static int ippoc_release(struct inode *inode, struct file *file)
{
	kvfree(file->private_data);
	return 0;
}

static ssize_t ippoc_read(struct file *file, char __user *ubuf, size_t count, loff_t *ppos)
{
	struct ippoc_snap *snap = file->private_data;

	return simple_read_from_buffer(ubuf, count, ppos, snap->data, snap->len);
}

static loff_t ippoc_llseek(struct file *file, loff_t offset, int whence)
{
	struct ippoc_snap *snap = file->private_data;

	if (!snap)
		return -ESPIPE;
	return fixed_size_llseek(file, offset, whence, snap->len);
}

static const struct file_operations ippoc_fops = {
	.owner		= THIS_MODULE,
	.open		= ippoc_open,
	.release	= ippoc_release,
	.read		= ippoc_read,
	.write		= ippoc_write,
	.llseek		= ippoc_llseek,
};

static struct miscdevice ippoc_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "ippoc",
	.fops	= &ippoc_fops,
};

static int __init ippoc_check_param(const char *name, int v, int lo, int hi)
{
	if (v >= lo && v <= hi)
		return 0;
	pr_err("parameter %s=%d out of range %d..%d\n", name, v, lo, hi);
	return -EINVAL;
}

static int __init ippoc_init(void)
{
	struct ippoc_counts c;
	int err;

	err = ippoc_check_param("top_n", top_n, 0, IPPOC_TOP_MAX) ?:
	      ippoc_check_param("max_tasks", max_tasks, IPPOC_TASKS_MIN, IPPOC_TASKS_MAX) ?:
	      ippoc_check_param("min_interval_ms", min_interval_ms, 10, 60000) ?:
	      ippoc_check_param("nice_delta_min", nice_delta_min, MIN_NICE, 0) ?:
	      ippoc_check_param("nice_delta_max", nice_delta_max, 0, MAX_NICE) ?:
	      ippoc_check_param("cmd_rate", cmd_rate, 1, 1000) ?:
	      ippoc_check_param("cmd_burst", cmd_burst, 1, 1000);
	if (err)
		return err;
	if (dev_mode & ~0664) {
		pr_err("parameter dev_mode=%#o has execute or other-write bits\n", dev_mode);
		return -EINVAL;
	}

	ippoc_prev = kvcalloc(max_tasks, sizeof(*ippoc_prev), GFP_KERNEL);
	ippoc_cur = kvcalloc(max_tasks, sizeof(*ippoc_cur), GFP_KERNEL);
	if (!ippoc_prev || !ippoc_cur) {
		err = -ENOMEM;
		goto fail;
	}
	/* Baseline sample, so the first reader's top list covers the time since load. */
	ippoc_prev_n = ippoc_walk(ippoc_prev, &c);
	ippoc_prev_time = ktime_get_boottime_ns();
	ippoc_rl_tokens = (u64)cmd_burst * NSEC_PER_SEC;
	ippoc_rl_last = ippoc_prev_time;

	ippoc_dev.mode = dev_mode;
	err = misc_register(&ippoc_dev);
	if (err)
		goto fail;
	pr_info("loaded: /dev/ippoc mode %#o, top_n %d, nice delta %d..%d, %d cmd/s burst %d%s\n",
		dev_mode, top_n, nice_delta_min, nice_delta_max, cmd_rate, cmd_burst,
		allow_self ? ", self allowed" : "");
	return 0;
fail:
	kvfree(ippoc_prev);
	kvfree(ippoc_cur);
	return err;
}

static void __exit ippoc_exit(void)
{
	misc_deregister(&ippoc_dev);
	kvfree(ippoc_prev);
	kvfree(ippoc_cur);
	pr_info("unloaded\n");
}

module_init(ippoc_init);
module_exit(ippoc_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("IPPOC project");
MODULE_DESCRIPTION("IPPOC kernel bridge: /dev/ippoc system snapshot and bounded commands");

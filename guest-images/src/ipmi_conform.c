/*
 * ipmi_conform - conformance checks for the ipmi(7D) driver interface
 * (OpenIPMI-compatible ioctls) against the Linux ipmi_devintf driver and
 * whatever BMC is behind it.
 *
 * Runs inside a Linux guest (built with gcc -static).  Prints one JSON object
 * per case on stdout:
 *     {"case": "...", "ok": true|false, "detail": "...", ["finding": "..."]}
 * and finally {"summary": {"passed": N, "failed": M}}.  Exit status 0 iff
 * every selected case passed.
 *
 * Expectations encode Linux 6.1 semantics (drivers/char/ipmi/ipmi_devintf.c,
 * ipmi_msghandler.c).  Where Linux differs from the ipmi(7D) page (seed 000)
 * the case carries a "finding" naming the deviation; "ok" still says whether
 * the driver behaved as Linux is expected to.
 *
 * The same program builds on FreeBSD, illumos and NetBSD (cc ipmi_conform.c;
 * guest-images/src/programs.toml) against their <sys/ipmi.h>, and there
 * encodes that OS's driver instead, read from its source:
 *   FreeBSD 14  sys/dev/ipmi/ipmi.c (ipmi_open, ipmi_poll, ipmi_ioctl) and
 *               sys/dev/ipmi/ipmivars.h; per-open queues, IPMB bridging of
 *               non-system-interface addresses.
 *   illumos     usr/src/uts/intel/io/ipmi/ipmi_main.c (ipmi_open, ipmi_ioctl,
 *               ipmi_poll) and ipmivars.h; the FreeBSD driver before IPMB
 *               support, KCS only.
 *   NetBSD 10   sys/dev/ipmi.c (ipmi_open, ipmi_ioctl, ipmi_poll) and
 *               sys/dev/ipmivar.h; it does offer the OpenIPMI ioctls
 *               (sys/sys/ipmi.h), but as one synchronous request slot per
 *               device shared by every open file, not a queue per open.
 * Findings name each OS's deviations from seed 000 the same way; a case an
 * OS cannot do at all reports ok=true with a finding that starts
 * "unsupported on <OS>:" and says why.
 *
 * Usage: ipmi_conform [-d /dev/ipmi0] [-i kcs|bt|ssif] [-e SECONDS] [-c CASE]...
 *                     [-l]
 */
#if defined(__linux__)
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#if defined(__linux__)
#include <linux/ipmi.h>
#elif defined(__FreeBSD__) || defined(__NetBSD__) || defined(__illumos__) || \
	defined(__sun)
#include <stddef.h>
#include <sys/types.h>
#include <sys/ipmi.h>
#else
#error "ipmi_conform: no OpenIPMI-compatible ipmi driver known for this OS"
#endif
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/sysmacros.h>
#elif defined(__illumos__) || defined(__sun)
#include <sys/mkdev.h>
#endif
#include <time.h>
#include <unistd.h>

/* NetBSD's <sys/ipmi.h> writes the ioctl group 'i' out instead. */
#ifndef IPMI_IOC_MAGIC
#define IPMI_IOC_MAGIC 'i'
#endif

/*
 * The OS this build speaks to, and the facts about its driver that the
 * shared code needs.
 *   OS_LINUX, OS_FREEBSD, OS_ILLUMOS, OS_NETBSD: exactly one is 1.
 *   Q_EMPTY: RECEIVE_MSG's errno with nothing to receive.  NetBSD
 *     (ipmi_ioctl): EIO when no request is outstanding (!sc_sent).
 *   RSP_NETFN(n): the netfn RECEIVE_MSG reports for a request of netfn n.
 *     NetBSD (ipmi_ioctl) reports the saved request netfn (sc_netfn).
 *   RSP_MSGID(id): the msgid it reports.  NetBSD keeps it in an int
 *     (ipmivar.h sc_msgid), so a long msgid comes back truncated.
 *   IDLE_POLLERR: poll() flags an fd with no request outstanding POLLERR
 *     (FreeBSD and illumos ipmi_poll: "if (dev->ipmi_requests == 0)").
 */
#if defined(__linux__)
#define OS_LINUX 1
#define OS_NAME "Linux"
#elif defined(__FreeBSD__)
#define OS_FREEBSD 1
#define OS_NAME "FreeBSD"
#elif defined(__NetBSD__)
#define OS_NETBSD 1
#define OS_NAME "NetBSD"
#else
#define OS_ILLUMOS 1
#define OS_NAME "illumos"
#endif
#ifndef OS_LINUX
#define OS_LINUX 0
#endif
#ifndef OS_FREEBSD
#define OS_FREEBSD 0
#endif
#ifndef OS_NETBSD
#define OS_NETBSD 0
#endif
#ifndef OS_ILLUMOS
#define OS_ILLUMOS 0
#endif
#if OS_NETBSD
#define Q_EMPTY EIO
#define Q_EMPTY_NAME "EIO"
#define RSP_NETFN(n) (n)
#define RSP_MSGID(id) ((long)(int)(id))
#else
#define Q_EMPTY EAGAIN
#define Q_EMPTY_NAME "EAGAIN"
#define RSP_NETFN(n) ((n) | 1)
#define RSP_MSGID(id) (id)
#endif
#define IDLE_POLLERR (OS_FREEBSD || OS_ILLUMOS)

#define NETFN_APP 0x06
#define CMD_GET_DEVICE_ID 0x01
#define CMD_GET_BT_IF_CAPS 0x36
#define CMD_GET_SYSIF_CAPS 0x57
#define CMD_GET_MSG 0x33
#define CMD_SEND_MSG 0x34
#define CMD_READ_EVT_BUF 0x35

#define MAXDATA 512

/* ------------------------------------------------------------------ */
/* global configuration                                                */

static const char *g_dev = "/dev/ipmi0";
static const char *g_iface; /* NULL, "kcs", "bt" or "ssif" */
static int g_rsp_timeout_ms = 10000;
static int g_event_secs = 10;
static void *g_bad_user_ptr;               /* PROT_NONE page */
static void *const g_kernel_ptr = (void *)0xffff888000001000UL;

/* Reference Get Device ID response (cc + data), fetched once. */
static unsigned char g_ref_devid[MAXDATA];
static int g_ref_devid_len = -1;

/* ------------------------------------------------------------------ */
/* result reporting                                                    */

struct result {
	int ok;
	char detail[2048];
	char finding[1024];
	char extra_key[32];
	char extra_val[256];
};

static void vappend(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t used = strlen(buf);

	if (used + 1 >= size)
		return;
	if (used)
		used += (size_t)snprintf(buf + used, size - used, "; ");
	if (used + 1 >= size)
		return;
	vsnprintf(buf + used, size - used, fmt, ap);
}

/* Append to the detail text. */
static void note(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* Record a failed expectation (also noted in the detail). */
static void fail(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct result *r, const char *fmt, ...)
{
	va_list ap;
	char tmp[600];

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	r->ok = 0;
	note(r, "FAIL: %s", tmp);
}

/* Record a deviation of Linux from seed 000 (the ipmi(7D) page). */
static void finding(struct result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void finding(struct result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vappend(r->finding, sizeof(r->finding), fmt, ap);
	va_end(ap);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void emit(const char *name, const struct result *r)
{
	fputs("{\"case\": ", stdout);
	json_str(name);
	printf(", \"ok\": %s, \"detail\": ", r->ok ? "true" : "false");
	json_str(r->detail);
	if (r->finding[0]) {
		fputs(", \"finding\": ", stdout);
		json_str(r->finding);
	}
	if (r->extra_key[0]) {
		fputs(", ", stdout);
		json_str(r->extra_key);
		fputs(": ", stdout);
		json_str(r->extra_val);
	}
	fputs("}\n", stdout);
	fflush(stdout);
}

static void hexstr(char *out, size_t outsz, const unsigned char *d, int n)
{
	size_t pos = 0;
	int i;

	out[0] = 0;
	for (i = 0; i < n && pos + 4 < outsz; i++)
		pos += (size_t)snprintf(out + pos, outsz - pos, "%s%02x",
					i ? " " : "", d[i]);
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "OK";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EMSGSIZE: return "EMSGSIZE";
	case ENOMEM: return "ENOMEM";
	case EBUSY: return "EBUSY";
	case ENOENT: return "ENOENT";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EIO: return "EIO";
	case ETIMEDOUT: return "ETIMEDOUT";
#if !OS_LINUX
	case EOPNOTSUPP: return "EOPNOTSUPP";
#endif
	default: return strerror(e);
	}
}

/* ioctl wrapper: returns 0 on success, else the errno (never -1). */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int rc = ioctl(fd, req, arg);

	if (rc == 0)
		return 0;
	if (rc > 0)
		return -rc; /* unexpected positive value, reported as <0 */
	return errno ? errno : EIO;
}

/* Expect an ioctl outcome; returns 1 if as expected. */
static int expect_err(struct result *r, const char *what, int got, int want)
{
	if (got == want) {
		note(r, "%s -> %s", what, ename(got));
		return 1;
	}
	if (got < 0)
		fail(r, "%s returned %d, expected %s", what, -got, ename(want));
	else
		fail(r, "%s -> %s, expected %s", what, ename(got), ename(want));
	return 0;
}

#if OS_LINUX
static long tainted(void)
{
	FILE *f = fopen("/proc/sys/kernel/tainted", "r");
	long v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Bits that appear when the kernel oopses (D=128) or warns (W=512). */
#define TAINT_OOPS_MASK (128L | 512L)

static void check_no_oops(struct result *r, long before)
{
	long after = tainted();

	if (before < 0 || after < 0) {
		note(r, "taint state unavailable");
		return;
	}
	if ((after & TAINT_OOPS_MASK) & ~(before & TAINT_OOPS_MASK))
		fail(r, "kernel taint went 0x%lx -> 0x%lx (oops/warning)",
		     before, after);
	else
		note(r, "no oops (taint 0x%lx)", after);
}
#else
/* No taint flag there: a fault in the driver panics the guest instead, which
 * the host sees as the console going away mid-run. */
static long tainted(void)
{
	return -1;
}

static void check_no_oops(struct result *r, long before)
{
	(void)before;
	note(r, "no taint flag on " OS_NAME "; a driver fault would have "
	     "stopped the guest");
}
#endif

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* IPMI helpers                                                        */

static int dev_open(int extra_flags)
{
	return open(g_dev, O_RDWR | extra_flags);
}

static void si_addr(struct ipmi_system_interface_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE;
	a->channel = IPMI_BMC_CHANNEL;
	a->lun = 0;
}

/* Send to the system interface; returns 0 or errno. */
static int send_si(int fd, unsigned char netfn, unsigned char cmd,
		   const unsigned char *data, unsigned short len, long msgid)
{
	struct ipmi_system_interface_addr a;
	struct ipmi_req req;

	si_addr(&a);
	memset(&req, 0, sizeof(req));
	req.addr = (unsigned char *)&a;
	req.addr_len = sizeof(a);
	req.msgid = msgid;
	req.msg.netfn = netfn;
	req.msg.cmd = cmd;
	req.msg.data_len = len;
	req.msg.data = (unsigned char *)data;
	return xioctl(fd, IPMICTL_SEND_COMMAND, &req);
}

/* poll() for POLLIN; returns 1 if readable, 0 on timeout, -1 on error. */
static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	long long deadline = now_ms() + timeout_ms;

	for (;;) {
		long long left = deadline - now_ms();
		int rc;

		if (left < 0)
			left = 0;
		rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return (p.revents & POLLIN) ? 1 : -1;
		if (rc == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

struct rmsg {
	struct ipmi_recv recv;
	struct ipmi_addr addr;
	unsigned char data[MAXDATA];
};

static void rmsg_prep(struct rmsg *m, unsigned short room)
{
	memset(m, 0, sizeof(*m));
	memset(m->data, 0xEE, sizeof(m->data));
	m->recv.addr = (unsigned char *)&m->addr;
	m->recv.addr_len = sizeof(m->addr);
	m->recv.msg.data = m->data;
	m->recv.msg.data_len = room;
	m->recv.msgid = -12345;
	m->recv.recv_type = -1;
}

static int recv_into(int fd, struct rmsg *m, unsigned short room, int trunc)
{
	rmsg_prep(m, room);
	return xioctl(fd, trunc ? IPMICTL_RECEIVE_MSG_TRUNC : IPMICTL_RECEIVE_MSG,
		      &m->recv);
}

/*
 * Wait for and receive the next message with full room.  Returns 0, or
 * ETIMEDOUT, or the RECEIVE_MSG errno.
 */
static int wait_recv(int fd, struct rmsg *m, int timeout_ms)
{
	int rc = wait_readable(fd, timeout_ms);

	if (rc == 0)
		return ETIMEDOUT;
	if (rc < 0)
		return errno ? errno : EIO;
	return recv_into(fd, m, MAXDATA, 0);
}

/*
 * Send one request and receive its response (skipping nothing: the fd is
 * expected to carry only this exchange).  Returns 0 on success and fills m;
 * on failure describes the problem in *why.
 */
static int transact(int fd, unsigned char netfn, unsigned char cmd,
		    const unsigned char *data, unsigned short len, long msgid,
		    struct rmsg *m, char *why, size_t whysz)
{
	int rc = send_si(fd, netfn, cmd, data, len, msgid);

	if (rc) {
		snprintf(why, whysz, "SEND_COMMAND -> %s", ename(rc));
		return -1;
	}
	rc = wait_recv(fd, m, g_rsp_timeout_ms);
	if (rc) {
		snprintf(why, whysz, "no response (%s)", ename(rc));
		return -1;
	}
	return 0;
}

/*
 * Check that m is the response to (netfn, cmd) with msgid; returns 1 if it
 * matches, else records failures.
 */
static int check_response(struct result *r, const struct rmsg *m,
			  unsigned char netfn, unsigned char cmd, long msgid)
{
	const struct ipmi_system_interface_addr *sa =
		(const struct ipmi_system_interface_addr *)&m->addr;
	int good = 1;

	if (m->recv.recv_type != IPMI_RESPONSE_RECV_TYPE) {
		fail(r, "recv_type %d, expected %d (IPMI_RESPONSE_RECV_TYPE)",
		     m->recv.recv_type, IPMI_RESPONSE_RECV_TYPE);
		good = 0;
	}
	if (m->recv.msgid != RSP_MSGID(msgid)) {
		fail(r, "msgid 0x%lx, expected 0x%lx", m->recv.msgid,
		     RSP_MSGID(msgid));
		good = 0;
	}
	if (m->recv.msg.netfn != RSP_NETFN(netfn)) {
		fail(r, "netfn 0x%02x, expected 0x%02x", m->recv.msg.netfn,
		     RSP_NETFN(netfn));
		good = 0;
	}
	if (m->recv.msg.cmd != cmd) {
		fail(r, "cmd 0x%02x, expected 0x%02x", m->recv.msg.cmd, cmd);
		good = 0;
	}
#if OS_LINUX
	if (sa->addr_type != IPMI_SYSTEM_INTERFACE_ADDR_TYPE ||
	    sa->channel != IPMI_BMC_CHANNEL) {
		fail(r, "response address type 0x%x channel 0x%x, expected "
		     "0x%x/0x%x", sa->addr_type, sa->channel,
		     IPMI_SYSTEM_INTERFACE_ADDR_TYPE, IPMI_BMC_CHANNEL);
		good = 0;
	}
	if (m->recv.addr_len != sizeof(struct ipmi_system_interface_addr)) {
		fail(r, "addr_len %u, expected %zu", m->recv.addr_len,
		     sizeof(struct ipmi_system_interface_addr));
		good = 0;
	}
#else
	/*
	 * FreeBSD, illumos and NetBSD (ipmi_ioctl, RECEIVE_MSG) copy in
	 * sizeof(struct ipmi_addr) bytes from recv.addr, set only .channel
	 * to IPMI_BMC_CHANNEL and copy the whole struct back out; addr_len
	 * is neither checked nor updated.  rmsg_prep passes a zeroed address
	 * and addr_len = sizeof(struct ipmi_addr), so both must come back so.
	 */
	if (sa->addr_type != 0 || sa->channel != IPMI_BMC_CHANNEL) {
		fail(r, "response address type 0x%x channel 0x%x, expected "
		     "0x0 (the caller's own, unchanged)/0x%x", sa->addr_type,
		     sa->channel, IPMI_BMC_CHANNEL);
		good = 0;
	}
	if (m->recv.addr_len != sizeof(struct ipmi_addr)) {
		fail(r, "addr_len %u, expected %zu (left as passed)",
		     m->recv.addr_len, sizeof(struct ipmi_addr));
		good = 0;
	}
#endif
	if (m->recv.msg.data_len < 1) {
		fail(r, "response has no completion code");
		good = 0;
	}
	return good;
}

/* Fetch the reference Get Device ID response on a private fd. */
static int ref_devid(struct result *r)
{
	struct rmsg m;
	char why[128];
	int fd;

	if (g_ref_devid_len >= 0)
		return 0;
	fd = dev_open(0);
	if (fd < 0) {
		fail(r, "open %s: %s", g_dev, strerror(errno));
		return -1;
	}
	if (transact(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, 0x7e57,
		     &m, why, sizeof(why))) {
		fail(r, "reference Get Device ID: %s", why);
		close(fd);
		return -1;
	}
	close(fd);
	if (m.recv.msg.data_len < 12 || m.data[0] != 0) {
		fail(r, "reference Get Device ID: cc 0x%02x len %u",
		     m.data[0], m.recv.msg.data_len);
		return -1;
	}
	memcpy(g_ref_devid, m.data, m.recv.msg.data_len);
	g_ref_devid_len = m.recv.msg.data_len;
	return 0;
}

/* Open a fresh fd (fresh user, empty queue); fail the case if impossible. */
static int open_or_fail(struct result *r)
{
	int fd = dev_open(0);

	if (fd < 0)
		fail(r, "open %s: %s", g_dev, strerror(errno));
	return fd;
}

#if !OS_LINUX
/*
 * 1 if nothing becomes readable on fd within ms.  A POLLERR without POLLIN
 * counts as quiet: FreeBSD and illumos (ipmi_poll) raise it while the fd
 * has no request outstanding, and then no message can arrive.
 */
static int quiet(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int rc = poll(&p, 1, ms);

	return rc <= 0 || !(p.revents & POLLIN);
}

/*
 * Receive up to n messages that requests the driver accepted must produce,
 * waiting for each; note what each was.  A RECEIVE_MSG error other than
 * Q_EMPTY is the driver reporting that request's failure (FreeBSD and
 * illumos hand back ir_error), so it counts as delivered.  Returns the
 * number delivered.
 */
static int drain(struct result *r, int fd, int n, const char *what)
{
	struct rmsg m;
	int got = 0, rc;

	while (got < n) {
		if (wait_readable(fd, g_rsp_timeout_ms) != 1)
			break;
		rc = recv_into(fd, &m, MAXDATA, 0);
		if (rc == Q_EMPTY)
			break;
		got++;
		if (rc)
			note(r, "%s #%d: RECEIVE_MSG -> %s", what, got, ename(rc));
		else
			note(r, "%s #%d: msgid 0x%lx netfn 0x%02x cmd 0x%02x "
			     "cc 0x%02x len %u", what, got, m.recv.msgid,
			     m.recv.msg.netfn, m.recv.msg.cmd, m.data[0],
			     m.recv.msg.data_len);
	}
	return got;
}
#endif

/* ------------------------------------------------------------------ */
/* cases                                                               */

static void case_open_close(struct result *r)
{
	int fds[4], i, fd;
	struct rmsg m;
	struct stat st;

	if (stat(g_dev, &st) != 0) {
		fail(r, "stat %s: %s", g_dev, strerror(errno));
		return;
	}
	if (!S_ISCHR(st.st_mode)) {
		fail(r, "%s is not a character device", g_dev);
		return;
	}
	note(r, "%s is char %u:%u", g_dev, major(st.st_rdev), minor(st.st_rdev));

	fd = dev_open(0);
	if (fd < 0) {
		fail(r, "open O_RDWR: %s", strerror(errno));
		return;
	}
	if (close(fd) != 0)
		fail(r, "close: %s", strerror(errno));
	else
		note(r, "open/close O_RDWR ok");

	fd = dev_open(O_NONBLOCK);
	if (fd < 0) {
		fail(r, "open O_RDWR|O_NONBLOCK: %s", strerror(errno));
	} else {
		close(fd);
		note(r, "open O_NONBLOCK ok");
	}

	/* several users at once */
	for (i = 0; i < 4; i++) {
		fds[i] = dev_open(0);
		if (fds[i] < 0)
			fail(r, "concurrent open #%d: %s", i, strerror(errno));
	}
	for (i = 0; i < 4; i++)
		if (fds[i] >= 0 && close(fds[i]) != 0)
			fail(r, "close #%d: %s", i, strerror(errno));
	note(r, "4 concurrent opens");

	/* close with a response still queued, then the device must still work */
	fd = dev_open(0);
	if (fd >= 0) {
		int rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, 77);

		if (rc)
			fail(r, "SEND_COMMAND before close: %s", ename(rc));
		else if (wait_readable(fd, g_rsp_timeout_ms) != 1)
			fail(r, "no response queued before close");
		if (close(fd) != 0)
			fail(r, "close with queued message: %s", strerror(errno));
		else
			note(r, "close with a queued response ok");
	}
	fd = dev_open(0);
	if (fd < 0) {
		fail(r, "reopen: %s", strerror(errno));
		return;
	}
#if OS_NETBSD
	/*
	 * NetBSD ipmi_close only resets sc_mode; the device's one pending
	 * response (sc_sent) survives the close and the next RECEIVE_MSG on
	 * any open file gets it.
	 */
	{
		int rc = recv_into(fd, &m, MAXDATA, 0);

		if (rc == 0 && m.recv.msgid == 77) {
			note(r, "reopened fd received the closed fd's response "
			     "(msgid 77)");
			finding(r, "NetBSD keeps one pending response per device, "
				"not a queue per open: a response survives the "
				"close of the file that asked for it and goes to "
				"whichever file receives next");
		} else {
			fail(r, "fresh fd after close: RECEIVE_MSG -> %s msgid "
			     "0x%lx, expected the closed fd's response (msgid 77; "
			     "NetBSD ipmi_close keeps sc_sent)", ename(rc),
			     m.recv.msgid);
		}
		rc = recv_into(fd, &m, MAXDATA, 0);
		expect_err(r, "RECEIVE_MSG afterwards", rc, Q_EMPTY);
	}
#else
	{
		int rc = recv_into(fd, &m, MAXDATA, 0);

		if (rc != EAGAIN)
			fail(r, "fresh fd after close: RECEIVE_MSG -> %s, "
			     "expected EAGAIN (queue must be per open)",
			     ename(rc));
		else
			note(r, "reopened fd starts with an empty queue");
	}
#endif
	close(fd);
}

static void case_get_device_id(struct result *r)
{
	struct rmsg m;
	char why[128], hex[128];
	long msgid = 0x1122334455667788L;
	int fd = open_or_fail(r);

	if (fd < 0)
		return;
	if (transact(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, msgid, &m,
		     why, sizeof(why))) {
		fail(r, "%s", why);
		close(fd);
		return;
	}
	close(fd);
#if OS_LINUX
	if (check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, msgid))
		note(r, "recv_type/msgid/netfn 0x07/cmd 0x01/address ok");
#else
	if (check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, msgid))
		note(r, "recv_type/msgid 0x%lx/netfn 0x%02x/cmd 0x01/address "
		     "as " OS_NAME " fills them", m.recv.msgid,
		     m.recv.msg.netfn);
	finding(r, OS_NAME " returns the caller's own address bytes with only "
		"the channel set (addr_type is not set to "
		"IPMI_SYSTEM_INTERFACE_ADDR_TYPE) and leaves addr_len as passed, "
		"unlike Linux ipmi_devintf, the interface seed 000 copies");
#if OS_NETBSD
	finding(r, "NetBSD reports the request's netfn (0x06), not the "
		"response's (0x07), and keeps msgid in an int "
		"(0x1122334455667788 comes back as 0x55667788)");
#endif
#endif
	if (m.recv.msg.data_len >= 1 && m.data[0] != 0)
		fail(r, "completion code 0x%02x, expected 0", m.data[0]);
	if (m.recv.msg.data_len < 12)
		fail(r, "length %u < 12", m.recv.msg.data_len);
	hexstr(hex, sizeof(hex), m.data,
	       m.recv.msg.data_len > 20 ? 20 : m.recv.msg.data_len);
	note(r, "len %u data %s", m.recv.msg.data_len, hex);
	if (m.recv.msg.data_len >= 6)
		note(r, "device id 0x%02x rev %u fw %u.%02x ipmi %u.%u",
		     m.data[1], m.data[2] & 0x0f, m.data[3] & 0x7f, m.data[4],
		     m.data[5] & 0x0f, m.data[5] >> 4);
	if (m.recv.msg.data_len >= 12 && m.data[0] == 0 &&
	    g_ref_devid_len < 0) {
		memcpy(g_ref_devid, m.data, m.recv.msg.data_len);
		g_ref_devid_len = m.recv.msg.data_len;
	}
}

static void case_recv_eagain(struct result *r)
{
	struct rmsg m;
	char why[128];
	long long t0;
	int fd, rc, i;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "RECEIVE_MSG on a fresh fd", rc, Q_EMPTY);

	/* fill, drain, then expect EAGAIN again */
	if (transact(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, 1, &m, why,
		     sizeof(why)))
		fail(r, "%s", why);
	for (i = 0; i < 16 && recv_into(fd, &m, MAXDATA, 0) == 0; i++)
		;
	t0 = now_ms();
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "RECEIVE_MSG after draining (blocking fd)", rc, Q_EMPTY);
	if (now_ms() - t0 > 500)
		fail(r, "RECEIVE_MSG blocked for %lld ms", now_ms() - t0);
	rc = recv_into(fd, &m, MAXDATA, 1);
	expect_err(r, "RECEIVE_MSG_TRUNC on empty queue", rc, Q_EMPTY);
	close(fd);

	fd = dev_open(O_NONBLOCK);
	if (fd < 0) {
		fail(r, "open O_NONBLOCK: %s", strerror(errno));
		return;
	}
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "RECEIVE_MSG on O_NONBLOCK fd", rc, Q_EMPTY);
	close(fd);
#if OS_NETBSD
	finding(r, "NetBSD answers RECEIVE_MSG with EIO, not EAGAIN, when "
		"nothing is pending (ipmi_ioctl: !sc_sent)");
#endif
}

static void case_recv_emsgsize(struct result *r)
{
	struct rmsg m;
	int fd, rc;
	long msgid = 0x5eed0001;

	if (ref_devid(r))
		return;
	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, msgid);
	if (rc) {
		fail(r, "SEND_COMMAND -> %s", ename(rc));
		goto out;
	}
	if (wait_readable(fd, g_rsp_timeout_ms) != 1) {
		fail(r, "no response within %d ms", g_rsp_timeout_ms);
		goto out;
	}
	rc = recv_into(fd, &m, 4, 0);
	expect_err(r, "RECEIVE_MSG with data_len 4", rc, EMSGSIZE);
	if (rc == 0) {
		fail(r, "message consumed although it did not fit (len %u)",
		     m.recv.msg.data_len);
		goto out;
	}
	if (m.data[4] != 0xEE)
		fail(r, "driver wrote past the 4-byte buffer");
#if OS_NETBSD
	/*
	 * NetBSD ipmi_ioctl reads the response off the interface and clears
	 * sc_sent before it compares the length, so EMSGSIZE has already
	 * consumed it.
	 */
	if (!quiet(fd, 0))
		fail(r, "readable after EMSGSIZE, expected the response gone");
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (expect_err(r, "RECEIVE_MSG after EMSGSIZE", rc, Q_EMPTY))
		finding(r, "NetBSD loses the response on EMSGSIZE; seed 000 "
			"says it will remain in the buffer");
	goto out;
#endif
	/* still queued: poll must say readable and a big buffer gets it */
	if (wait_readable(fd, 0) != 1)
		fail(r, "queue not readable after EMSGSIZE");
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (rc) {
		fail(r, "second RECEIVE_MSG -> %s (message lost)", ename(rc));
		goto out;
	}
	if (check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, msgid) &&
	    m.recv.msg.data_len == (unsigned)g_ref_devid_len &&
	    memcmp(m.data, g_ref_devid, (size_t)g_ref_devid_len) == 0)
		note(r, "message remained queued and was received intact "
		     "(%u bytes)", m.recv.msg.data_len);
	else
		fail(r, "requeued message differs from reference (len %u vs %d)",
		     m.recv.msg.data_len, g_ref_devid_len);
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "queue afterwards", rc, EAGAIN);
out:
	close(fd);
}

static void case_recv_trunc(struct result *r)
{
	struct rmsg m;
	int fd, rc;
	long msgid = 0x5eed0002;
	char hex[64];

	if (ref_devid(r))
		return;
	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, msgid);
	if (rc) {
		fail(r, "SEND_COMMAND -> %s", ename(rc));
		goto out;
	}
	if (wait_readable(fd, g_rsp_timeout_ms) != 1) {
		fail(r, "no response within %d ms", g_rsp_timeout_ms);
		goto out;
	}
	rc = recv_into(fd, &m, 4, 1);
#if OS_LINUX
	/*
	 * Linux (handle_recv, trunc=true): copies the first data_len bytes,
	 * writes the ipmi_recv back with msg.data_len = buffer size, frees
	 * the message, and still returns -EMSGSIZE.
	 */
	if (rc == EMSGSIZE) {
		note(r, "RECEIVE_MSG_TRUNC with data_len 4 -> -1/EMSGSIZE");
		finding(r, "Linux returns -1/EMSGSIZE from RECEIVE_MSG_TRUNC "
			"although it delivered the truncated message and "
			"dequeued it; seed 000 describes truncation as the "
			"non-error alternative to EMSGSIZE");
	} else if (rc == 0) {
		fail(r, "RECEIVE_MSG_TRUNC returned 0 (seed-000 reading); "
		     "Linux 6.1 returns EMSGSIZE after truncating");
	} else {
		fail(r, "RECEIVE_MSG_TRUNC -> %s, expected EMSGSIZE with "
		     "truncated data", ename(rc));
		goto out;
	}
#else
	/*
	 * FreeBSD, illumos (ipmi_ioctl: len = min(data_len, replylen + 1))
	 * and NetBSD (len = data_len - 1 data bytes after the completion
	 * code) dequeue, copy what fits, set data_len to it and return 0:
	 * the truncation seed 000 describes.
	 */
	if (rc == 0) {
		note(r, "RECEIVE_MSG_TRUNC with data_len 4 -> 0 (truncated)");
	} else {
		fail(r, "RECEIVE_MSG_TRUNC -> %s, expected 0 with truncated "
		     "data", ename(rc));
		goto out;
	}
#endif
	hexstr(hex, sizeof(hex), m.data, 4);
	if (m.recv.msg.data_len != 4)
		fail(r, "data_len %u after truncation, expected 4",
		     m.recv.msg.data_len);
	else
		note(r, "data_len set to buffer size 4");
	if (memcmp(m.data, g_ref_devid, 4) != 0)
		fail(r, "truncated data %s differs from reference", hex);
	else
		note(r, "first 4 bytes intact (%s)", hex);
	if (m.data[4] != 0xEE)
		fail(r, "driver wrote past the 4-byte buffer");
	if (m.recv.msgid != RSP_MSGID(msgid) ||
	    m.recv.recv_type != IPMI_RESPONSE_RECV_TYPE)
		fail(r, "header not filled: msgid 0x%lx recv_type %d",
		     m.recv.msgid, m.recv.recv_type);
	if (m.recv.msg.netfn != RSP_NETFN(NETFN_APP) ||
	    m.recv.msg.cmd != CMD_GET_DEVICE_ID)
		fail(r, "netfn/cmd 0x%02x/0x%02x", m.recv.msg.netfn,
		     m.recv.msg.cmd);
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (rc == Q_EMPTY)
		note(r, "message consumed (queue empty afterwards)");
	else
		fail(r, "after TRUNC the queue gave %s, expected " Q_EMPTY_NAME
		     " (message must be consumed)", ename(rc));

	/* A message that fits: TRUNC behaves like RECEIVE_MSG, returns 0. */
	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, msgid + 1);
	if (rc == 0 && wait_readable(fd, g_rsp_timeout_ms) == 1) {
		rc = recv_into(fd, &m, MAXDATA, 1);
		if (rc == 0 && m.recv.msg.data_len == (unsigned)g_ref_devid_len)
			note(r, "TRUNC with enough room -> 0, len %u",
			     m.recv.msg.data_len);
		else
			fail(r, "TRUNC with enough room -> %s len %u",
			     ename(rc), m.recv.msg.data_len);
	} else {
		fail(r, "second exchange failed (%s)", ename(rc));
	}
out:
	close(fd);
}

/*
 * What SEND_COMMAND says to an unreadable req.addr.  illumos ipmi_ioctl
 * copies in the ipmi_req but never reads req.addr (it always talks to the
 * system interface), so the command is sent.
 */
#if OS_ILLUMOS
#define SEND_BADADDR 0
#else
#define SEND_BADADDR EFAULT
#endif

static void case_send_efault(struct result *r)
{
	struct ipmi_system_interface_addr a;
	struct ipmi_req req;
	struct rmsg m;
	char why[128];
	long before = tainted();
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	si_addr(&a);

	memset(&req, 0, sizeof(req));
	req.addr = g_bad_user_ptr;
	req.addr_len = sizeof(a);
	req.msg.netfn = NETFN_APP;
	req.msg.cmd = CMD_GET_DEVICE_ID;
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND addr=unmapped page", rc, SEND_BADADDR);

	req.addr = g_kernel_ptr;
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND addr=kernel address", rc, SEND_BADADDR);

	req.addr = (unsigned char *)&a;
	req.msg.data = g_bad_user_ptr;
	req.msg.data_len = 4;
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND msg.data=unmapped page", rc, EFAULT);

	rc = xioctl(fd, IPMICTL_SEND_COMMAND, g_bad_user_ptr);
	expect_err(r, "SEND_COMMAND arg=unmapped page", rc, EFAULT);

#if OS_ILLUMOS
	if (drain(r, fd, 2, "bad-addr SEND_COMMAND") != 2)
		fail(r, "the two bad-addr SEND_COMMANDs were accepted but did "
		     "not both produce a response");
	finding(r, "illumos never reads ipmi_req.addr: an unmapped or kernel "
		"address is not EFAULT, the command goes to the BMC");
#endif
	/* nothing may have been sent by the failed calls */
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (wait_readable(fd, 200) == 1 || rc != Q_EMPTY)
		fail(r, "a failed SEND_COMMAND produced a response");

	if (transact(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, 9, &m, why,
		     sizeof(why)))
		fail(r, "device unusable afterwards: %s", why);
	else if (check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, 9))
		note(r, "device still works");
	close(fd);
	check_no_oops(r, before);
}

/* Send Get Device ID and wait until it is queued; returns 0 on success. */
static int queue_one(struct result *r, int fd, long msgid)
{
	int rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, msgid);

	if (rc) {
		fail(r, "SEND_COMMAND -> %s", ename(rc));
		return -1;
	}
	if (wait_readable(fd, g_rsp_timeout_ms) != 1) {
		fail(r, "no response within %d ms", g_rsp_timeout_ms);
		return -1;
	}
	return 0;
}

/* After an error, the message must still be queued and intact. */
static void expect_still_queued(struct result *r, int fd, long msgid,
				const char *after)
{
	struct rmsg m;
	int rc = recv_into(fd, &m, MAXDATA, 0);

	if (rc) {
		fail(r, "after %s: RECEIVE_MSG -> %s (message lost)", after,
		     ename(rc));
		return;
	}
	if (check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, msgid) &&
	    m.recv.msg.data_len >= 12 && m.data[0] == 0)
		note(r, "message kept after %s", after);
}

static void case_recv_efault(struct result *r)
{
	struct ipmi_recv rv;
	unsigned char data[MAXDATA];
	long before = tainted();
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	if (queue_one(r, fd, 0xfa01))
		goto out;

	memset(&rv, 0, sizeof(rv));
	rv.addr = g_bad_user_ptr;
	rv.addr_len = sizeof(struct ipmi_addr);
	rv.msg.data = data;
	rv.msg.data_len = sizeof(data);
	rc = xioctl(fd, IPMICTL_RECEIVE_MSG, &rv);
	expect_err(r, "RECEIVE_MSG addr=unmapped page", rc, EFAULT);
	if (rc == 0)
		goto out;

	rv.addr = g_kernel_ptr;
	rc = xioctl(fd, IPMICTL_RECEIVE_MSG, &rv);
	expect_err(r, "RECEIVE_MSG addr=kernel address", rc, EFAULT);
	if (rc == 0)
		goto out;

#if OS_LINUX
	{
		struct ipmi_addr a;

		rv.addr = (unsigned char *)&a;
		rv.msg.data = g_bad_user_ptr;
		rc = xioctl(fd, IPMICTL_RECEIVE_MSG, &rv);
		expect_err(r, "RECEIVE_MSG msg.data=unmapped page", rc, EFAULT);
		if (rc == 0)
			goto out;
	}
#endif

	rc = xioctl(fd, IPMICTL_RECEIVE_MSG, g_bad_user_ptr);
	expect_err(r, "RECEIVE_MSG arg=unmapped page", rc, EFAULT);
	if (rc == 0)
		goto out;

	expect_still_queued(r, fd, 0xfa01, "EFAULTs");
#if !OS_LINUX
	/*
	 * FreeBSD and illumos (ipmi_ioctl) take the message off the queue,
	 * NetBSD reads it off the interface and clears sc_sent, before the
	 * copyout to msg.data: an unwritable msg.data gets EFAULT and the
	 * message is gone.
	 */
	if (queue_one(r, fd, 0xfa02))
		goto out;
	{
		struct ipmi_addr a;
		struct rmsg m;

		memset(&a, 0, sizeof(a));
		rv.addr = (unsigned char *)&a;
		rv.addr_len = sizeof(a);
		rv.msg.data = g_bad_user_ptr;
		rv.msg.data_len = sizeof(data);
		rc = xioctl(fd, IPMICTL_RECEIVE_MSG, &rv);
		expect_err(r, "RECEIVE_MSG msg.data=unmapped page", rc, EFAULT);
		rc = recv_into(fd, &m, MAXDATA, 0);
		if (expect_err(r, "RECEIVE_MSG after the msg.data EFAULT", rc,
			       Q_EMPTY))
			finding(r, OS_NAME " takes the message off its queue "
				"before copying it out: an EFAULT on msg.data "
				"loses the message");
	}
#endif
out:
	close(fd);
	check_no_oops(r, before);
}

static void case_recv_einval(struct result *r)
{
	struct rmsg m;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	if (queue_one(r, fd, 0xab01))
		goto out;
	rmsg_prep(&m, MAXDATA);
	m.recv.addr_len = 2; /* smaller than a system interface address */
	rc = xioctl(fd, IPMICTL_RECEIVE_MSG, &m.recv);
#if OS_LINUX
	expect_err(r, "RECEIVE_MSG with addr_len 2", rc, EINVAL);
	if (rc == EINVAL)
		finding(r, "Linux returns EINVAL (message kept) when addr_len "
			"is too small for the source address; seed 000 lists "
			"only EAGAIN/EFAULT/EMSGSIZE for RECEIVE_MSG");
	if (rc == 0)
		goto out;
	expect_still_queued(r, fd, 0xab01, "EINVAL");
#else
	/*
	 * FreeBSD, illumos and NetBSD (ipmi_ioctl) never look at addr_len:
	 * they deliver the message and copy out a whole struct ipmi_addr.
	 */
	if (!expect_err(r, "RECEIVE_MSG with addr_len 2", rc, 0))
		goto out;
	{
		const struct ipmi_system_interface_addr *sa =
			(const struct ipmi_system_interface_addr *)&m.addr;

		if (m.recv.msgid != RSP_MSGID(0xab01) ||
		    m.recv.msg.data_len < 12 || m.data[0] != 0)
			fail(r, "delivered msgid 0x%lx len %u cc 0x%02x, "
			     "expected the queued Get Device ID", m.recv.msgid,
			     m.recv.msg.data_len, m.data[0]);
		if (m.recv.addr_len != 2)
			fail(r, "addr_len became %u, expected it left at 2",
			     m.recv.addr_len);
		if (sa->channel == IPMI_BMC_CHANNEL)
			note(r, "message delivered; the address was written "
			     "past addr_len (channel at offset %zu)",
			     offsetof(struct ipmi_system_interface_addr,
				      channel));
		else
			fail(r, "channel 0x%x in the address, expected 0x%x",
			     sa->channel, IPMI_BMC_CHANNEL);
	}
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "queue afterwards", rc, Q_EMPTY);
	finding(r, OS_NAME " ignores addr_len: it writes a whole struct "
		"ipmi_addr (%zu bytes) to addr whatever room addr_len gives, "
		"and leaves addr_len as passed", sizeof(struct ipmi_addr));
#endif
out:
	close(fd);
}

/*
 * GET_MY_ADDRESS/GET_MY_LUN fill an unsigned int.  illumos ipmi_ioctl
 * copies out sizeof(uchar_t) bytes (ipmivars.h: uchar_t ipmi_address,
 * ipmi_lun), so there the rest of the int is whatever the caller had:
 * start from 0 to read the value, and probe the partial write on its own.
 */
#if OS_ILLUMOS
#define GET_FILL 0
#else
#define GET_FILL 0xdeadbeef
#endif

static int get_uint(int fd, unsigned long req, unsigned int *v)
{
	*v = GET_FILL;
	return xioctl(fd, req, v);
}

#if OS_ILLUMOS
/* 1 if GET writes only the low byte (x86 is little-endian) of a filled int. */
static int get_writes_one_byte(struct result *r, int fd, unsigned long req,
			       unsigned int value, const char *what)
{
	unsigned int w = 0xdeadbeef;
	int rc = xioctl(fd, req, &w);

	if (rc == 0 && w == (0xdeadbe00u | (value & 0xff))) {
		note(r, "%s into 0xdeadbeef -> 0x%x (one byte written)", what, w);
		return 1;
	}
	fail(r, "%s into 0xdeadbeef -> %s 0x%x, expected 0x%x (illumos copies "
	     "out one byte)", what, ename(rc), w, 0xdeadbe00u | (value & 0xff));
	return 0;
}
#endif

/*
 * The address and LUN an open starts with.  FreeBSD (ipmi_open) and illumos
 * (ipmi_open) set IPMI_BMC_SLAVE_ADDR and IPMI_BMC_SMS_LUN per open; NetBSD
 * never sets its per-device sc_address/sc_lun, so they start at 0.
 */
#if OS_NETBSD
#define INIT_ADDR 0x00u
#define INIT_LUN 0u
#else
#define INIT_ADDR 0x20u
#define INIT_LUN 2u
#endif

static void case_my_address(struct result *r)
{
	unsigned int orig, v, w;
	int fd, fd2, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = get_uint(fd, IPMICTL_GET_MY_ADDRESS_CMD, &orig);
	if (rc) {
		fail(r, "GET_MY_ADDRESS -> %s", ename(rc));
		close(fd);
		return;
	}
	note(r, "initial address 0x%02x", orig);
	if (orig > 0xff)
		fail(r, "GET_MY_ADDRESS returned 0x%x (> 0xff)", orig);
#if !OS_LINUX
	if (orig != INIT_ADDR)
		fail(r, "initial address 0x%02x, expected 0x%02x", orig,
		     INIT_ADDR);
#endif
#if OS_ILLUMOS
	get_writes_one_byte(r, fd, IPMICTL_GET_MY_ADDRESS_CMD, orig,
			    "GET_MY_ADDRESS");
#endif

	v = 0x22;
	rc = xioctl(fd, IPMICTL_SET_MY_ADDRESS_CMD, &v);
	if (rc)
		fail(r, "SET_MY_ADDRESS 0x22 -> %s", ename(rc));
	rc = get_uint(fd, IPMICTL_GET_MY_ADDRESS_CMD, &w);
	if (rc || w != 0x22)
		fail(r, "GET_MY_ADDRESS after set 0x22 -> %s 0x%x", ename(rc), w);
	else
		note(r, "set 0x22, get 0x22");

#if OS_LINUX
	/* Linux keeps the address per interface, not per open file. */
	fd2 = dev_open(0);
	if (fd2 >= 0) {
		rc = get_uint(fd2, IPMICTL_GET_MY_ADDRESS_CMD, &w);
		if (rc || w != 0x22)
			fail(r, "second fd sees 0x%x (%s), expected 0x22 "
			     "(address is per interface in Linux)", w, ename(rc));
		else
			note(r, "second fd sees 0x22 (per-interface state)");
		close(fd2);
	}

	/* Linux truncates the unsigned int to 8 bits without an error. */
	v = 0x1a4;
	rc = xioctl(fd, IPMICTL_SET_MY_ADDRESS_CMD, &v);
	get_uint(fd, IPMICTL_GET_MY_ADDRESS_CMD, &w);
	if (rc == 0 && w == 0xa4) {
		note(r, "set 0x1a4 -> 0 and reads back 0xa4");
		finding(r, "Linux keeps the slave address per interface (shared "
			"by all open files) and silently truncates it to 8 bits");
	} else {
		fail(r, "set 0x1a4 -> %s, reads back 0x%x (expected 0, 0xa4)",
		     ename(rc), w);
	}
#else
	/*
	 * FreeBSD and illumos keep the address in the per-open ipmi_device
	 * (a second open starts at 0x20 again); NetBSD keeps one in the
	 * softc, shared by every open file.
	 */
	{
		unsigned int want = OS_NETBSD ? 0x22u : INIT_ADDR;

		fd2 = dev_open(0);
		if (fd2 >= 0) {
			rc = get_uint(fd2, IPMICTL_GET_MY_ADDRESS_CMD, &w);
			if (rc || w != want)
				fail(r, "second fd sees 0x%x (%s), expected 0x%02x",
				     w, ename(rc), want);
			else
				note(r, "second fd sees 0x%02x (%s state)", w,
				     OS_NETBSD ? "per-device" : "per-open");
			close(fd2);
		}
	}
	/*
	 * 0x1a4: FreeBSD stores the int in a u_char (ipmivars.h), illumos
	 * copies in one byte of it (little-endian: 0xa4); NetBSD stores the
	 * whole int (ipmivar.h: int sc_address).
	 */
	{
		unsigned int want = OS_NETBSD ? 0x1a4u : 0xa4u;

		v = 0x1a4;
		rc = xioctl(fd, IPMICTL_SET_MY_ADDRESS_CMD, &v);
		get_uint(fd, IPMICTL_GET_MY_ADDRESS_CMD, &w);
		if (rc == 0 && w == want)
			note(r, "set 0x1a4 -> 0 and reads back 0x%x", w);
		else
			fail(r, "set 0x1a4 -> %s, reads back 0x%x (expected 0, "
			     "0x%x)", ename(rc), w, want);
	}
#if OS_FREEBSD
	finding(r, "FreeBSD keeps the slave address per open file (each open "
		"starts at 0x20) and silently truncates it to 8 bits");
#elif OS_ILLUMOS
	finding(r, "illumos keeps the slave address per open file, reads only "
		"the first byte of SET_MY_ADDRESS's unsigned int and writes only "
		"one byte of GET_MY_ADDRESS's");
#else
	finding(r, "NetBSD keeps one slave address per device (shared by all "
		"open files) that starts at 0, not 0x20, stores any int "
		"unchecked and never uses it (ipmi_sendcmd always addresses "
		"BMC_SA, LUN 0)");
#endif
#endif

	rc = xioctl(fd, IPMICTL_GET_MY_ADDRESS_CMD, g_bad_user_ptr);
	expect_err(r, "GET_MY_ADDRESS to unmapped page", rc, EFAULT);
	rc = xioctl(fd, IPMICTL_SET_MY_ADDRESS_CMD, g_bad_user_ptr);
	expect_err(r, "SET_MY_ADDRESS from unmapped page", rc, EFAULT);

	v = orig;
	rc = xioctl(fd, IPMICTL_SET_MY_ADDRESS_CMD, &v);
	get_uint(fd, IPMICTL_GET_MY_ADDRESS_CMD, &w);
	if (rc || w != orig)
		fail(r, "restore 0x%02x failed (%s, now 0x%x)", orig, ename(rc), w);
	else
		note(r, "restored 0x%02x", orig);
	close(fd);
}

static void case_my_lun(struct result *r)
{
	unsigned int orig, v, w;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = get_uint(fd, IPMICTL_GET_MY_LUN_CMD, &orig);
	if (rc) {
		fail(r, "GET_MY_LUN -> %s", ename(rc));
		close(fd);
		return;
	}
	note(r, "initial LUN %u", orig);
	if (orig > 3)
		fail(r, "GET_MY_LUN returned %u (> 3)", orig);
#if !OS_LINUX
	if (orig != INIT_LUN)
		fail(r, "initial LUN %u, expected %u", orig, INIT_LUN);
#endif
#if OS_ILLUMOS
	get_writes_one_byte(r, fd, IPMICTL_GET_MY_LUN_CMD, orig, "GET_MY_LUN");
#endif

	for (v = 0; v < 4; v++) {
		unsigned int t = v;

		rc = xioctl(fd, IPMICTL_SET_MY_LUN_CMD, &t);
		get_uint(fd, IPMICTL_GET_MY_LUN_CMD, &w);
		if (rc || w != v)
			fail(r, "set LUN %u -> %s, get %u", v, ename(rc), w);
	}
	note(r, "LUN 0..3 round trip");

	v = 5;
	rc = xioctl(fd, IPMICTL_SET_MY_LUN_CMD, &v);
	get_uint(fd, IPMICTL_GET_MY_LUN_CMD, &w);
	if (rc == 0 && w == 1) {
		note(r, "set LUN 5 -> 0, reads back 1");
		finding(r, OS_NAME " masks the LUN to 2 bits (5 -> 1) instead of "
			"rejecting it");
	} else {
		fail(r, "set LUN 5 -> %s, reads back %u (expected 0, 1)",
		     ename(rc), w);
	}
	rc = xioctl(fd, IPMICTL_GET_MY_LUN_CMD, g_bad_user_ptr);
	expect_err(r, "GET_MY_LUN to unmapped page", rc, EFAULT);

	v = orig;
	rc = xioctl(fd, IPMICTL_SET_MY_LUN_CMD, &v);
	get_uint(fd, IPMICTL_GET_MY_LUN_CMD, &w);
	if (rc || w != orig)
		fail(r, "restore LUN %u failed (%s, now %u)", orig, ename(rc), w);
	else
		note(r, "restored LUN %u", orig);
#if OS_NETBSD
	finding(r, "NetBSD's LUN is one per device, starts at 0, not 2 "
		"(IPMI_BMC_SMS_LUN), and is never used");
#elif OS_ILLUMOS
	finding(r, "illumos writes only one byte of GET_MY_LUN's unsigned int");
#endif
	close(fd);
}

static void case_gets_events(struct result *r)
{
	int fd, rc, v;
	struct rmsg m;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	v = 1;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	expect_err(r, "SET_GETS_EVENTS 1", rc, 0);
	v = 1;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	expect_err(r, "SET_GETS_EVENTS 1 again", rc, 0);
	/* drop anything the BMC had queued for event receivers */
	while (recv_into(fd, &m, MAXDATA, 0) == 0)
		;
	v = 0;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	expect_err(r, "SET_GETS_EVENTS 0", rc, 0);
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, g_bad_user_ptr);
	/*
	 * FreeBSD and NetBSD: the generic ioctl layer copies an _IOW
	 * argument in before the driver sees it.  illumos has no such layer
	 * and its ipmi_ioctl does nothing for SET_GETS_EVENTS.
	 */
	expect_err(r, "SET_GETS_EVENTS from unmapped page", rc,
		   OS_ILLUMOS ? 0 : EFAULT);
	/* the fd must still carry ordinary traffic */
	if (queue_one(r, fd, 0xe0e0) == 0)
		expect_still_queued(r, fd, 0xe0e0, "SET_GETS_EVENTS");
#if OS_LINUX
	finding(r, "seed 000 calls SET_GETS_EVENTS a stub; Linux implements "
		"it (events are queued to the file as "
		"IPMI_ASYNC_EVENT_RECV_TYPE)");
#elif OS_ILLUMOS
	note(r, "a stub, as seed 000 says (ipmi_ioctl: no-op)");
	finding(r, "illumos never reads SET_GETS_EVENTS's argument: an unmapped "
		"pointer succeeds");
#else
	note(r, "a stub, as seed 000 says (ipmi_ioctl: no-op)");
#endif
	close(fd);
}

#if !OS_LINUX
/*
 * FreeBSD and NetBSD (ipmi_ioctl) answer both with EOPNOTSUPP, illumos with
 * EINVAL; an unreadable argument is EFAULT from the generic ioctl layer of
 * FreeBSD and NetBSD first, while illumos returns EINVAL without reading it.
 */
#define REG_UNSUPPORTED (OS_ILLUMOS ? EINVAL : EOPNOTSUPP)

static void case_register_cmd(struct result *r)
{
	struct ipmi_cmdspec cs = { .netfn = 0x30, .cmd = 0x01 };
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, &cs);
	expect_err(r, "REGISTER_FOR_CMD netfn 0x30 cmd 0x01", rc,
		   REG_UNSUPPORTED);
	rc = xioctl(fd, IPMICTL_UNREGISTER_FOR_CMD, &cs);
	expect_err(r, "UNREGISTER_FOR_CMD netfn 0x30 cmd 0x01", rc,
		   REG_UNSUPPORTED);
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, g_bad_user_ptr);
	expect_err(r, "REGISTER_FOR_CMD from unmapped page", rc,
		   OS_ILLUMOS ? EINVAL : EFAULT);
	finding(r, "unsupported on " OS_NAME ": REGISTER/UNREGISTER_FOR_CMD "
		"fail with %s, as seed 000 lists them unimplemented",
		ename(REG_UNSUPPORTED));
	close(fd);
}
#else
static void case_register_cmd(struct result *r)
{
	struct ipmi_cmdspec cs = { .netfn = 0x30, .cmd = 0x01 };
	int fd, fd2, fd3, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	fd2 = dev_open(0);
	if (fd2 < 0) {
		fail(r, "second open: %s", strerror(errno));
		close(fd);
		return;
	}
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, &cs);
	if (!expect_err(r, "REGISTER_FOR_CMD netfn 0x30 cmd 0x01", rc, 0)) {
		if (rc == EBUSY)
			note(r, "someone else on this interface owns it");
		goto out;
	}
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, &cs);
	expect_err(r, "REGISTER_FOR_CMD again (same fd)", rc, EBUSY);
	rc = xioctl(fd2, IPMICTL_REGISTER_FOR_CMD, &cs);
	expect_err(r, "REGISTER_FOR_CMD from another fd", rc, EBUSY);
	rc = xioctl(fd2, IPMICTL_UNREGISTER_FOR_CMD, &cs);
	expect_err(r, "UNREGISTER_FOR_CMD from the non-owner", rc, ENOENT);
	cs.cmd = 0x02;
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, &cs);
	expect_err(r, "REGISTER_FOR_CMD netfn 0x30 cmd 0x02 (different cmd)",
		   rc, 0);
	rc = xioctl(fd, IPMICTL_UNREGISTER_FOR_CMD, &cs);
	expect_err(r, "UNREGISTER_FOR_CMD cmd 0x02", rc, 0);
	cs.cmd = 0x01;
	rc = xioctl(fd, IPMICTL_UNREGISTER_FOR_CMD, &cs);
	expect_err(r, "UNREGISTER_FOR_CMD", rc, 0);
	rc = xioctl(fd, IPMICTL_UNREGISTER_FOR_CMD, &cs);
	expect_err(r, "UNREGISTER_FOR_CMD again", rc, ENOENT);
	rc = xioctl(fd, IPMICTL_REGISTER_FOR_CMD, g_bad_user_ptr);
	expect_err(r, "REGISTER_FOR_CMD from unmapped page", rc, EFAULT);

	/* registrations die with the file */
	fd3 = dev_open(0);
	if (fd3 >= 0) {
		rc = xioctl(fd3, IPMICTL_REGISTER_FOR_CMD, &cs);
		expect_err(r, "REGISTER_FOR_CMD on a third fd", rc, 0);
		close(fd3);
		rc = xioctl(fd2, IPMICTL_REGISTER_FOR_CMD, &cs);
		expect_err(r, "REGISTER_FOR_CMD after the owner closed", rc, 0);
		rc = xioctl(fd2, IPMICTL_UNREGISTER_FOR_CMD, &cs);
		expect_err(r, "UNREGISTER_FOR_CMD (cleanup)", rc, 0);
	}
	finding(r, "seed 000 lists REGISTER/UNREGISTER_FOR_CMD as "
		"unimplemented; Linux implements them with EBUSY for a "
		"duplicate (per interface, any fd) and ENOENT for unregistering "
		"what this fd does not own");
out:
	close(fd2);
	close(fd);
}
#endif

/*
 * What SEND_COMMAND says to an address Linux rejects with EINVAL.  FreeBSD
 * (ipmi_ioctl) treats every address type but the system interface as IPMB
 * and bridges it; illumos never reads the address; NetBSD copies it in and
 * ignores it: all three send the command.
 */
#if OS_LINUX
#define SEND_BADADDR_TYPE EINVAL
#else
#define SEND_BADADDR_TYPE 0
/*
 * How many responses n accepted requests leave behind.  NetBSD keeps one:
 * its SEND_COMMAND first reads and discards a pending response
 * (ipmi_ioctl: "clear pending result").
 */
#define KEPT(n) (OS_NETBSD ? 1 : (n))
#endif

static void case_send_einval(struct result *r)
{
	struct ipmi_system_interface_addr a;
	struct ipmi_addr big;
	struct ipmi_req req;
	struct rmsg m;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	si_addr(&a);
	memset(&req, 0, sizeof(req));
	req.addr = (unsigned char *)&a;
	req.addr_len = sizeof(a);
	req.msg.netfn = NETFN_APP;
	req.msg.cmd = CMD_GET_DEVICE_ID;

	a.addr_type = 0x7e; /* no such address type */
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND addr_type 0x7e", rc, SEND_BADADDR_TYPE);

	si_addr(&a);
	a.channel = 0; /* system interface must use IPMI_BMC_CHANNEL */
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND system interface on channel 0", rc,
		   SEND_BADADDR_TYPE);

	si_addr(&a);
	req.addr_len = 4; /* shorter than any address */
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND addr_len 4", rc, SEND_BADADDR_TYPE);

	memset(&big, 0, sizeof(big));
	big.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE;
	big.channel = IPMI_BMC_CHANNEL;
	req.addr = (unsigned char *)&big;
	req.addr_len = sizeof(big) + 1;
	rc = xioctl(fd, IPMICTL_SEND_COMMAND, &req);
	expect_err(r, "SEND_COMMAND addr_len sizeof(ipmi_addr)+1", rc,
		   SEND_BADADDR_TYPE);

#if OS_LINUX
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (wait_readable(fd, 200) == 1 || rc != EAGAIN)
		fail(r, "a rejected SEND_COMMAND produced a response");
	finding(r, "Linux rejects bad addresses with EINVAL; seed 000 lists "
		"only EFAULT and ENOMEM for SEND_COMMAND");
#else
	rc = drain(r, fd, KEPT(4), "response");
	if (rc != KEPT(4))
		fail(r, "%d responses to the 4 accepted requests, expected %d",
		     rc, KEPT(4));
	if (!quiet(fd, 200))
		fail(r, "more responses than requests");
	(void)m;
#if OS_FREEBSD
	finding(r, "FreeBSD checks neither addr_type, channel nor addr_len: a "
		"system-interface address goes to the BMC whatever its channel, "
		"any other address type is bridged to IPMB with Send Message and "
		"its answer fetched with Get Message");
#elif OS_ILLUMOS
	finding(r, "illumos never reads ipmi_req.addr: every request goes to "
		"the system interface whatever its address");
#else
	finding(r, "NetBSD copies ipmi_req.addr in but never looks at it: "
		"every request goes to the BMC (BMC_SA, LUN 0)");
#endif
#endif
	close(fd);
}

static void case_send_emsgsize(struct result *r)
{
	unsigned char data[400];
	struct rmsg m;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	memset(data, 0, sizeof(data));
	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, data, 300, 1);
#if OS_LINUX
	expect_err(r, "SEND_COMMAND with 300 data bytes "
		   "(> IPMI_MAX_MSG_LENGTH 272)", rc, EMSGSIZE);
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (wait_readable(fd, 200) == 1 || rc != EAGAIN)
		fail(r, "the rejected SEND_COMMAND produced a response");
	finding(r, "Linux returns EMSGSIZE for an oversized request; seed 000 "
		"does not list EMSGSIZE for SEND_COMMAND");
#else
	/*
	 * No 272-byte limit: FreeBSD (ipmi_ioctl) allocates and queues any
	 * data_len, illumos and NetBSD refuse only data_len > IPMI_MAX_RX
	 * (1024) with EINVAL.  FreeBSD and illumos queue the request, so
	 * SEND_COMMAND returns 0 and what the interface made of 300 bytes
	 * comes back as the response (or its error); NetBSD writes to the
	 * interface synchronously and says EIO if that failed.
	 */
	if (rc == 0 || (OS_NETBSD && rc == EIO))
		note(r, "SEND_COMMAND with 300 data bytes -> %s", ename(rc));
	else
		fail(r, "SEND_COMMAND with 300 data bytes -> %s, expected OK%s",
		     ename(rc), OS_NETBSD ? " or EIO" : "");
	if (rc == 0 && drain(r, fd, 1, "300-byte request") != 1)
		fail(r, "the accepted 300-byte request produced no response");
#if !OS_FREEBSD
	{
		static unsigned char huge[IPMI_MAX_RX + 1];

		rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, huge,
			     sizeof(huge), 2);
		expect_err(r, "SEND_COMMAND with IPMI_MAX_RX+1 data bytes", rc,
			   EINVAL);
	}
#endif
	if (!quiet(fd, 200))
		fail(r, "a response nobody asked for");
	(void)m;
	finding(r, OS_NAME " has no 272-byte request limit and never returns "
		"EMSGSIZE from SEND_COMMAND%s", OS_FREEBSD ? " (nor any limit)" :
		" (only data_len > 1024 is EINVAL)");
#endif
	close(fd);
}

/*
 * Linux's message handler keeps these three commands to itself; FreeBSD,
 * illumos and NetBSD (ipmi_ioctl) send whatever netfn/cmd they are given.
 */
#define SEND_RESERVED (OS_LINUX ? EINVAL : 0)

static void case_reserved_cmd(struct result *r)
{
	static const unsigned char cmds[] = {
		CMD_GET_MSG, CMD_SEND_MSG, CMD_READ_EVT_BUF
	};
	static const char *const names[] = {
		"Get Message", "Send Message", "Read Event Message Buffer"
	};
	struct rmsg m;
	unsigned i;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	for (i = 0; i < sizeof(cmds); i++) {
		char what[96];

		snprintf(what, sizeof(what), "SEND_COMMAND App 0x%02x (%s)",
			 cmds[i], names[i]);
		rc = send_si(fd, NETFN_APP, cmds[i], NULL, 0, 100 + i);
		expect_err(r, what, rc, SEND_RESERVED);
	}
#if OS_LINUX
	rc = recv_into(fd, &m, MAXDATA, 0);
	if (wait_readable(fd, 200) == 1 || rc != EAGAIN)
		fail(r, "a rejected command produced a response");
	finding(r, "Linux reserves Get Message/Send Message/Read Event Message "
		"Buffer to the message handler (EINVAL to users); seed 000 "
		"does not mention it");
#else
	rc = drain(r, fd, KEPT(3), "response");
	if (rc != KEPT(3))
		fail(r, "%d responses to the 3 accepted requests, expected %d",
		     rc, KEPT(3));
	(void)m;
	finding(r, OS_NAME " passes Get Message, Send Message and Read Event "
		"Message Buffer through to the BMC like any other command");
#endif
	close(fd);
}

static void case_completion_code(struct result *r)
{
	struct rmsg m;
	char why[128], hex[64];
	int fd;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	if (transact(fd, 0x30, 0xFE, NULL, 0, 0xcc01, &m, why, sizeof(why))) {
		fail(r, "%s", why);
		close(fd);
		return;
	}
	close(fd);
	check_response(r, &m, 0x30, 0xFE, 0xcc01);
	hexstr(hex, sizeof(hex), m.data,
	       m.recv.msg.data_len > 16 ? 16 : m.recv.msg.data_len);
	note(r, "NetFn 0x30 cmd 0xFE -> netfn 0x%02x len %u data %s",
	     m.recv.msg.netfn, m.recv.msg.data_len, hex);
	if (m.recv.msg.data_len >= 1 && m.data[0] == 0xC1)
		note(r, "cc 0xC1 (invalid command) passed through");
	else if (m.recv.msg.data_len >= 1)
		fail(r, "cc 0x%02x, expected 0xC1", m.data[0]);
}

static void case_poll_select(struct result *r)
{
	struct pollfd p;
	struct rmsg m;
	fd_set rfds;
	struct timeval tv;
	int fd, rc;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	p.fd = fd;
	p.events = POLLIN | POLLRDNORM;
	p.revents = 0;
	rc = poll(&p, 1, 0);
#if IDLE_POLLERR
	if (rc != 1 || (p.revents & POLLIN) || !(p.revents & POLLERR))
		fail(r, "poll on empty queue -> %d revents 0x%x, expected POLLERR "
		     "alone", rc, p.revents);
	else
		note(r, "poll(0) on empty queue -> POLLERR");
#else
	if (rc != 0)
		fail(r, "poll on empty queue -> %d revents 0x%x", rc, p.revents);
	else
		note(r, "poll(0) on empty queue -> not ready");
#endif

	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, 0x9011);
	if (rc) {
		fail(r, "SEND_COMMAND -> %s", ename(rc));
		goto out;
	}
	p.revents = 0;
	rc = poll(&p, 1, g_rsp_timeout_ms);
	if (rc != 1 || !(p.revents & POLLIN))
		fail(r, "poll after send -> %d revents 0x%x", rc, p.revents);
	else
		note(r, "poll -> POLLIN%s", (p.revents & POLLRDNORM) ?
		     "|POLLRDNORM" : "");
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
		fail(r, "unexpected revents 0x%x", p.revents);

	FD_ZERO(&rfds);
	FD_SET(fd, &rfds);
	tv.tv_sec = 0;
	tv.tv_usec = 0;
	rc = select(fd + 1, &rfds, NULL, NULL, &tv);
	if (rc != 1 || !FD_ISSET(fd, &rfds))
		fail(r, "select with a queued response -> %d", rc);
	else
		note(r, "select -> readable");

	rc = recv_into(fd, &m, MAXDATA, 0);
	if (rc)
		fail(r, "RECEIVE_MSG -> %s", ename(rc));
	else
		check_response(r, &m, NETFN_APP, CMD_GET_DEVICE_ID, 0x9011);

	p.revents = 0;
	rc = poll(&p, 1, 0);
#if IDLE_POLLERR
	/*
	 * FreeBSD and illumos ipmi_poll: POLLERR again once nothing is
	 * outstanding.  select() turns it into a readable fd: FreeBSD's
	 * selscan asks for POLLRDNORM|POLLHUP|POLLERR on a read set
	 * (select_flags), illumos libc's pselect sets the read bit for
	 * POLLERR when POLLRDNORM was asked for.
	 */
	if (rc != 1 || (p.revents & POLLIN) || !(p.revents & POLLERR))
		fail(r, "poll after draining -> %d revents 0x%x, expected "
		     "POLLERR alone", rc, p.revents);
	FD_ZERO(&rfds);
	FD_SET(fd, &rfds);
	tv.tv_sec = 0;
	tv.tv_usec = 100000;
	rc = select(fd + 1, &rfds, NULL, NULL, &tv);
	if (rc != 1 || !FD_ISSET(fd, &rfds))
		fail(r, "select after draining -> %d, expected the POLLERR "
		     "reported as readable", rc);
	else
		note(r, "POLLERR and select-readable again after draining");
	finding(r, OS_NAME " raises POLLERR on an fd with no request "
		"outstanding (ipmi_poll), and select() reports it readable: an "
		"idle fd never blocks poll() or select()");
#else
	if (rc != 0)
		fail(r, "poll after draining -> %d revents 0x%x", rc, p.revents);
	FD_ZERO(&rfds);
	FD_SET(fd, &rfds);
	tv.tv_sec = 0;
	tv.tv_usec = 100000;
	rc = select(fd + 1, &rfds, NULL, NULL, &tv);
	if (rc != 0)
		fail(r, "select after draining -> %d", rc);
	else
		note(r, "not ready again after draining");
#endif
#if OS_NETBSD
	finding(r, "NetBSD reports POLLIN as soon as a request was sent "
		"(ipmi_poll: sc_sent), before the BMC has answered; "
		"RECEIVE_MSG then waits for the answer");
#endif
out:
	close(fd);
}

static void case_multi_outstanding(struct result *r)
{
	enum { N = 4 };
	struct rmsg m;
	int seen[N] = { 0 };
	int fd, rc, i, got = 0;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	for (i = 0; i < N; i++) {
		rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0,
			     0x3000 + i);
		if (rc) {
			fail(r, "SEND_COMMAND #%d -> %s", i, ename(rc));
			goto out;
		}
	}
#if OS_NETBSD
	/*
	 * NetBSD's SEND_COMMAND reads and discards the pending response
	 * before it sends (ipmi_ioctl: "clear pending result"), so only the
	 * last request's answer is left.
	 */
	rc = wait_recv(fd, &m, g_rsp_timeout_ms);
	if (rc)
		fail(r, "no response after %d requests: %s", N, ename(rc));
	else if (m.recv.msgid != 0x3000 + N - 1)
		fail(r, "msgid 0x%lx, expected 0x%x (the last request's)",
		     m.recv.msgid, 0x3000 + N - 1);
	else
		note(r, "%d back-to-back requests, one response (msgid 0x%lx)",
		     N, m.recv.msgid);
	rc = recv_into(fd, &m, MAXDATA, 0);
	expect_err(r, "RECEIVE_MSG afterwards", rc, Q_EMPTY);
	finding(r, "NetBSD has one request slot per device: each "
		"SEND_COMMAND throws away the previous request's response, so "
		"requests cannot be in flight together");
	(void)seen;
	(void)got;
	(void)i;
	goto out;
#endif
	while (got < N) {
		rc = wait_recv(fd, &m, g_rsp_timeout_ms);
		if (rc) {
			fail(r, "after %d responses: %s", got, ename(rc));
			break;
		}
		if (m.recv.msgid < 0x3000 || m.recv.msgid >= 0x3000 + N) {
			fail(r, "unexpected msgid 0x%lx", m.recv.msgid);
			break;
		}
		if (seen[m.recv.msgid - 0x3000]++)
			fail(r, "msgid 0x%lx delivered twice", m.recv.msgid);
		if (m.recv.msg.data_len < 12 || m.data[0] != 0)
			fail(r, "msgid 0x%lx: cc 0x%02x len %u", m.recv.msgid,
			     m.data[0], m.recv.msg.data_len);
		got++;
	}
	if (got == N)
		note(r, "%d back-to-back requests, %d responses, msgids matched",
		     N, got);
#if OS_LINUX
	if (wait_readable(fd, 300) != 0)
		fail(r, "extra message after %d responses", N);
#else
	if (!quiet(fd, 300))
		fail(r, "extra message after %d responses", N);
#endif
out:
	close(fd);
}

static void case_fd_isolation(struct result *r)
{
	struct rmsg m;
	int a, b, rc;

	a = open_or_fail(r);
	if (a < 0)
		return;
	b = dev_open(0);
	if (b < 0) {
		fail(r, "second open: %s", strerror(errno));
		close(a);
		return;
	}
#if OS_NETBSD
	/*
	 * NetBSD: one pending response per device (sc_sent); poll says
	 * POLLIN on every open file and the first RECEIVE_MSG takes it.
	 */
	if (queue_one(r, a, 0x150) == 0) {
		if (wait_readable(b, 300) != 1)
			fail(r, "the other fd did not become readable");
		rc = recv_into(b, &m, MAXDATA, 0);
		if (rc == 0 && m.recv.msgid == 0x150)
			note(r, "the other fd received fd a's response");
		else
			fail(r, "RECEIVE_MSG on the other fd -> %s msgid 0x%lx, "
			     "expected fd a's response (0x150)", ename(rc),
			     m.recv.msgid);
		rc = recv_into(a, &m, MAXDATA, 0);
		expect_err(r, "RECEIVE_MSG on fd a afterwards", rc, Q_EMPTY);
		finding(r, "NetBSD does not keep responses per open file: any "
			"file may receive another's response");
	}
#else
	if (queue_one(r, a, 0x150) == 0) {
#if OS_LINUX
		if (wait_readable(b, 300) != 0)
			fail(r, "the other fd became readable");
#else
		if (!quiet(b, 300))
			fail(r, "the other fd became readable");
#endif
		rc = recv_into(b, &m, MAXDATA, 0);
		expect_err(r, "RECEIVE_MSG on the other fd", rc, EAGAIN);
		expect_still_queued(r, a, 0x150, "checking the other fd");
	}
#endif
	close(b);
	close(a);
}

#if OS_FREEBSD
#define UNKNOWN_IOCTL ENOTTY
#elif OS_ILLUMOS
#define UNKNOWN_IOCTL EINVAL
#elif OS_NETBSD
#define UNKNOWN_IOCTL ENODEV
#endif

static void case_unknown_ioctl(struct result *r)
{
	int fd, rc, dummy = 0;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = xioctl(fd, _IOR(IPMI_IOC_MAGIC, 99, int), &dummy);
#if OS_LINUX
	if (rc == ENOTTY) {
		note(r, "unknown ioctl 'i' 99 -> ENOTTY");
	} else if (rc == EINVAL) {
		note(r, "unknown ioctl 'i' 99 -> EINVAL");
		finding(r, "unknown ioctls fail with EINVAL instead of ENOTTY");
	} else {
		fail(r, "unknown ioctl -> %s, expected ENOTTY (or EINVAL)",
		     ename(rc));
	}
#else
	/*
	 * FreeBSD: ipmi_ioctl's ENOIOCTL becomes ENOTTY in devfs_ioctl_f;
	 * illumos ipmi_ioctl: EINVAL; NetBSD ipmi_ioctl: ENODEV.
	 */
	if (expect_err(r, "unknown ioctl 'i' 99", rc, UNKNOWN_IOCTL) &&
	    rc != ENOTTY)
		finding(r, OS_NAME " fails unknown ioctls with %s instead of "
			"ENOTTY", ename(rc));
#endif
	close(fd);
}

#if !OS_LINUX
static void case_interface_type(struct result *r)
{
	note(r, "not run");
	finding(r, "unsupported on " OS_NAME ": its ipmi driver names the "
		"interface type only in its attach message; there is nothing "
		"like Linux's sysfs type for a program to read");
}
#else
static void case_interface_type(struct result *r)
{
	struct stat st;
	char path[128], buf[32] = "";
	FILE *f;

	if (stat(g_dev, &st) != 0) {
		fail(r, "stat %s: %s", g_dev, strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "/sys/class/ipmi/ipmi%u/device/type",
		 minor(st.st_rdev));
	f = fopen(path, "r");
	if (!f) {
		fail(r, "%s: %s", path, strerror(errno));
		return;
	}
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	note(r, "%s = %s", path, buf);
	if (strcmp(buf, g_iface) != 0)
		fail(r, "driver reports '%s', expected '%s'", buf, g_iface);
}
#endif

static void case_interface_caps(struct result *r)
{
	struct rmsg m;
	char why[128], hex[64];
	unsigned char type0 = 0; /* SSIF */
	int fd, ok;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	if (strcmp(g_iface, "bt") == 0)
		ok = !transact(fd, NETFN_APP, CMD_GET_BT_IF_CAPS, NULL, 0, 0xb7,
			       &m, why, sizeof(why));
	else
		ok = !transact(fd, NETFN_APP, CMD_GET_SYSIF_CAPS, &type0, 1,
			       0xb7, &m, why, sizeof(why));
	close(fd);
	if (!ok) {
		fail(r, "%s", why);
		return;
	}
	hexstr(hex, sizeof(hex), m.data,
	       m.recv.msg.data_len > 12 ? 12 : m.recv.msg.data_len);
	check_response(r, &m, NETFN_APP,
		       strcmp(g_iface, "bt") == 0 ? CMD_GET_BT_IF_CAPS :
		       CMD_GET_SYSIF_CAPS, 0xb7);
	note(r, "%s capabilities: %s", g_iface, hex);
	if (m.data[0] != 0)
		fail(r, "cc 0x%02x", m.data[0]);
	else if (strcmp(g_iface, "bt") == 0 && m.recv.msg.data_len < 6)
		fail(r, "BT capabilities too short (%u)", m.recv.msg.data_len);
	else if (strcmp(g_iface, "ssif") == 0 && m.recv.msg.data_len < 4)
		fail(r, "SSIF capabilities too short (%u)", m.recv.msg.data_len);
}

/*
 * Linux 6.1 ipmi_ssif only fetches the event buffer piggybacked on other
 * traffic: its request_events() merely sets a flag that is looked at when
 * the next message completes, and QEMU's smbus-ipmi never shows attention.
 * With -i ssif the wait is therefore "nudged" with a Get Device ID every
 * second; the nudges' responses are not counted as other messages.
 */
#define NUDGE_MSGID 0x4e554447L

#if !OS_LINUX
/*
 * FreeBSD, illumos and NetBSD accept SET_GETS_EVENTS and do nothing
 * (ipmi_ioctl): no driver of theirs ever queues an
 * IPMI_ASYNC_EVENT_RECV_TYPE message, so there is nothing to wait for.
 */
static void case_events(struct result *r)
{
	int fd, rc, v = 1;

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	expect_err(r, "SET_GETS_EVENTS 1", rc, 0);
	v = 0;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	expect_err(r, "SET_GETS_EVENTS 0", rc, 0);
	note(r, "not waiting %d s for an event", g_event_secs);
	finding(r, "unsupported on " OS_NAME ": SET_GETS_EVENTS is a no-op and "
		"the driver never delivers IPMI_ASYNC_EVENT_RECV_TYPE "
		"messages (seed 000: a stub)");
	close(fd);
}
#else
static void case_events(struct result *r)
{
	struct rmsg m;
	long long deadline, t0, next_nudge;
	int fd, rc, v = 1, other = 0, nudges = 0;
	int nudge = g_iface && strcmp(g_iface, "ssif") == 0;
	char hex[128];

	fd = open_or_fail(r);
	if (fd < 0)
		return;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	if (rc) {
		fail(r, "SET_GETS_EVENTS 1 -> %s", ename(rc));
		close(fd);
		return;
	}
	note(r, "waiting up to %d s for an event%s", g_event_secs,
	     nudge ? " (nudging with Get Device ID every 1 s)" : "");
	/* One Get Device ID now: the BMC (a test host watching its trace)
	 * learns from it that this receiver is listening. */
	rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID, NULL, 0, NUDGE_MSGID);
	if (rc)
		note(r, "ready announcement -> %s", ename(rc));
	t0 = now_ms();
	deadline = t0 + (long long)g_event_secs * 1000;
	next_nudge = t0 + 1000;
	for (;;) {
		long long now = now_ms(), left = deadline - now;

		if (left <= 0) {
			fail(r, "no IPMI_ASYNC_EVENT_RECV_TYPE message within "
			     "%d s (%d other messages, %d nudges)",
			     g_event_secs, other, nudges);
			break;
		}
		if (nudge) {
			if (now >= next_nudge) {
				rc = send_si(fd, NETFN_APP, CMD_GET_DEVICE_ID,
					     NULL, 0, NUDGE_MSGID);
				if (rc)
					note(r, "nudge -> %s", ename(rc));
				nudges++;
				next_nudge = now + 1000;
			}
			if (left > next_nudge - now)
				left = next_nudge - now;
		}
		rc = wait_recv(fd, &m, (int)left);
		if (rc == ETIMEDOUT)
			continue;
		if (rc) {
			fail(r, "RECEIVE_MSG -> %s", ename(rc));
			break;
		}
		if (m.recv.recv_type != IPMI_ASYNC_EVENT_RECV_TYPE) {
			if (!(m.recv.recv_type == IPMI_RESPONSE_RECV_TYPE &&
			      m.recv.msgid == NUDGE_MSGID))
				other++;
			continue;
		}
		hexstr(hex, sizeof(hex), m.data, m.recv.msg.data_len);
		note(r, "event after %lld ms: netfn 0x%02x cmd 0x%02x len %u: %s",
		     now_ms() - t0, m.recv.msg.netfn, m.recv.msg.cmd,
		     m.recv.msg.data_len, hex);
		snprintf(r->extra_key, sizeof(r->extra_key), "event");
		snprintf(r->extra_val, sizeof(r->extra_val), "%s", hex);
		if (m.recv.msg.data_len != 16)
			fail(r, "event has %u bytes, expected 16",
			     m.recv.msg.data_len);
		break;
	}
	if (nudge)
		finding(r, "Linux 6.1 ipmi_ssif fetches the event buffer only "
			"when other traffic completes (request_events just sets "
			"a flag; QEMU smbus-ipmi has no attention), so an idle "
			"SSIF event receiver never gets the event");
	v = 0;
	rc = xioctl(fd, IPMICTL_SET_GETS_EVENTS_CMD, &v);
	if (rc)
		fail(r, "SET_GETS_EVENTS 0 -> %s", ename(rc));
	close(fd);
}
#endif

/* ------------------------------------------------------------------ */

enum { DEFAULT = 1, NEED_IFACE = 2, NEED_IFACE_NOT_KCS = 4, OPT_IN = 8 };

struct testcase {
	const char *name;
	void (*fn)(struct result *);
	int flags;
	const char *help;
};

static const struct testcase cases[] = {
	{ "open_close", case_open_close, DEFAULT,
	  "open/close, concurrent opens, close with a queued response" },
	{ "get_device_id", case_get_device_id, DEFAULT,
	  "SEND_COMMAND Get Device ID + RECEIVE_MSG, all fields" },
	{ "recv_eagain", case_recv_eagain, DEFAULT,
	  "RECEIVE_MSG on an empty queue -> EAGAIN" },
	{ "recv_emsgsize", case_recv_emsgsize, DEFAULT,
	  "RECEIVE_MSG too small -> EMSGSIZE, message stays queued" },
	{ "recv_trunc", case_recv_trunc, DEFAULT,
	  "RECEIVE_MSG_TRUNC too small -> truncated, dequeued" },
	{ "send_efault", case_send_efault, DEFAULT,
	  "bad user pointers in SEND_COMMAND -> EFAULT, no oops" },
	{ "recv_efault", case_recv_efault, DEFAULT,
	  "bad user pointers in RECEIVE_MSG -> EFAULT, message kept" },
	{ "recv_einval", case_recv_einval, DEFAULT,
	  "RECEIVE_MSG with too small addr_len -> EINVAL, message kept" },
	{ "my_address", case_my_address, DEFAULT,
	  "SET/GET_MY_ADDRESS_CMD round trip" },
	{ "my_lun", case_my_lun, DEFAULT, "SET/GET_MY_LUN_CMD round trip" },
	{ "gets_events", case_gets_events, DEFAULT,
	  "SET_GETS_EVENTS_CMD 1 then 0" },
	{ "register_cmd", case_register_cmd, DEFAULT,
	  "REGISTER/UNREGISTER_FOR_CMD, EBUSY, ENOENT" },
	{ "send_einval", case_send_einval, DEFAULT,
	  "invalid address in SEND_COMMAND -> EINVAL" },
	{ "send_emsgsize", case_send_emsgsize, DEFAULT,
	  "oversized request -> EMSGSIZE" },
	{ "reserved_cmd", case_reserved_cmd, DEFAULT,
	  "Get/Send Message, Read Event Buffer reserved -> EINVAL" },
	{ "completion_code", case_completion_code, DEFAULT,
	  "NetFn 0x30 cmd 0xFE -> cc 0xC1 passes through" },
	{ "poll_select", case_poll_select, DEFAULT,
	  "poll()/select() readiness follows the queue" },
	{ "multi_outstanding", case_multi_outstanding, DEFAULT,
	  "several requests in flight on one fd" },
	{ "fd_isolation", case_fd_isolation, DEFAULT,
	  "a response goes only to the sender's fd" },
	{ "unknown_ioctl", case_unknown_ioctl, DEFAULT,
	  "unknown ioctl is rejected" },
	{ "interface_type", case_interface_type, DEFAULT | NEED_IFACE,
	  "sysfs type of the interface matches -i" },
	{ "interface_caps", case_interface_caps,
	  DEFAULT | NEED_IFACE | NEED_IFACE_NOT_KCS,
	  "BT/SSIF interface capabilities command (with -i bt|ssif)" },
	{ "events", case_events, OPT_IN,
	  "wait -e SECONDS for an async event (not in the default run)" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void usage(FILE *f)
{
	unsigned i;

	fprintf(f, "usage: ipmi_conform [-d DEV] [-i kcs|bt|ssif] "
		"[-e SECONDS] [-c CASE]... [-l]\n"
		"  -d DEV      device (default /dev/ipmi0)\n"
		"  -i IFACE    expected interface; enables interface cases and "
		"scales timeouts\n"
		"  -e SECONDS  run the 'events' case with this wait\n"
		"  -c CASE     run only the named case(s)\n"
		"  -l          list cases\n"
		"With neither -c nor -e all default cases run; -e alone runs "
		"only 'events'.\ncases:\n");
	for (i = 0; i < NCASES; i++)
		fprintf(f, "  %-18s %s\n", cases[i].name, cases[i].help);
}

int main(int argc, char **argv)
{
	int selected[NCASES] = { 0 };
	int any_selected = 0, event_opt = 0, opt;
	unsigned i;
	int passed = 0, failed = 0;

	while ((opt = getopt(argc, argv, "d:i:c:e:lh")) != -1) {
		switch (opt) {
		case 'd':
			g_dev = optarg;
			break;
		case 'i':
			if (strcmp(optarg, "kcs") && strcmp(optarg, "bt") &&
			    strcmp(optarg, "ssif")) {
				fprintf(stderr, "ipmi_conform: -i must be kcs, "
					"bt or ssif\n");
				return 2;
			}
			g_iface = optarg;
			break;
		case 'e': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > 86400) {
				fprintf(stderr, "ipmi_conform: bad -e value\n");
				return 2;
			}
			g_event_secs = (int)v;
			event_opt = 1;
			break;
		}
		case 'c': {
			int found = 0;

			for (i = 0; i < NCASES; i++)
				if (strcmp(cases[i].name, optarg) == 0) {
					selected[i] = 1;
					found = 1;
				}
			if (!found) {
				fprintf(stderr, "ipmi_conform: unknown case "
					"'%s'\n", optarg);
				usage(stderr);
				return 2;
			}
			any_selected = 1;
			break;
		}
		case 'l':
			for (i = 0; i < NCASES; i++)
				printf("%s\n", cases[i].name);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (event_opt) {
		for (i = 0; i < NCASES; i++)
			if (strcmp(cases[i].name, "events") == 0)
				selected[i] = 1;
		any_selected = 1;
	}
	if (g_iface && strcmp(g_iface, "ssif") == 0)
		g_rsp_timeout_ms = 20000;

	g_bad_user_ptr = mmap(NULL, 4096, PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g_bad_user_ptr == MAP_FAILED) {
		perror("mmap");
		return 2;
	}

	for (i = 0; i < NCASES; i++) {
		const struct testcase *tc = &cases[i];
		struct result r;

		if (any_selected) {
			if (!selected[i])
				continue;
		} else if (!(tc->flags & DEFAULT)) {
			continue;
		}
		memset(&r, 0, sizeof(r));
		r.ok = 1;
		if ((tc->flags & NEED_IFACE) && !g_iface) {
			if (!any_selected)
				continue;
			fail(&r, "needs -i kcs|bt|ssif");
		} else if ((tc->flags & NEED_IFACE_NOT_KCS) &&
			   strcmp(g_iface, "kcs") == 0) {
			if (!any_selected)
				continue;
			fail(&r, "not applicable to kcs");
		} else {
			tc->fn(&r);
		}
		if (r.ok && !r.detail[0])
			note(&r, "ok");
		emit(tc->name, &r);
		if (r.ok)
			passed++;
		else
			failed++;
	}
	printf("{\"summary\": {\"passed\": %d, \"failed\": %d}}\n", passed,
	       failed);
	fflush(stdout);
	return failed ? 1 : 0;
}

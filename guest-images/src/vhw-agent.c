/*
 * vhw-agent: the guest side of docs/agent-protocol.md.
 *
 * usage: vhw-agent DEVICE   (e.g. /dev/vport1p1, or /dev/ttyS1)
 *
 * One request per line on DEVICE, one answer per line back, strictly in
 * order. Binary fields are base64 ("-" when empty). Requests are served one
 * at a time; a bad request gets an ERR answer and the agent carries on.
 * Built with gcc -static so it needs nothing from the guest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

struct buf {
	char *p;
	size_t len, cap;
};

static int port = -1;
static int sigfd[2];            /* SIGCHLD self-pipe: read end is polled */

/* Make room for n more bytes; 0 on success, -1 when out of memory. */
static int reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int add(struct buf *b, const void *d, size_t n)
{
	if (reserve(b, n))
		return -1;
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static int adds(struct buf *b, const char *s)
{
	return add(b, s, strlen(s));
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Append " " and the base64 of d (or "-" if empty). */
static int add_b64(struct buf *b, const unsigned char *d, size_t n)
{
	if (n == 0)
		return adds(b, " -");
	if (reserve(b, 1 + (n + 2) / 3 * 4))
		return -1;
	char *o = b->p + b->len;
	*o++ = ' ';
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = d[i] << 16;
		if (i + 1 < n)
			v |= d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		*o++ = b64chars[v >> 18];
		*o++ = b64chars[(v >> 12) & 63];
		*o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	b->len = o - b->p;
	return 0;
}

/* Decode base64 in place (strict, padded); "-" is empty. Returns the
 * length, or -1 if s is not valid base64. s stays NUL-terminated. */
static long unb64(char *s)
{
	size_t n = strlen(s), o = 0;
	if (strcmp(s, "-") == 0) {
		s[0] = 0;
		return 0;
	}
	if (n == 0 || n % 4)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0;
		int pad = 0;
		for (int k = 0; k < 4; k++) {
			char c = s[i + k];
			const char *q = c ? strchr(b64chars, c) : NULL;
			if (c == '=' && i + 4 == n && k >= 2 &&
			    (k == 3 || s[i + 3] == '=')) {
				pad++;
				v <<= 6;
			} else if (q && !pad) {
				v = v << 6 | (unsigned)(q - b64chars);
			} else {
				return -1;
			}
		}
		s[o++] = v >> 16;
		if (pad < 2)
			s[o++] = v >> 8;
		if (pad < 1)
			s[o++] = v;
	}
	s[o] = 0;
	return o;
}

/* Write a whole answer line to the port. Blocks while the host is slow;
 * gives up only on a hard error (the host then lost this answer). */
static void send_buf(struct buf *b)
{
	size_t off = 0;
	while (off < b->len) {
		ssize_t w = write(port, b->p + off, b->len - off);
		if (w > 0) {
			off += w;
		} else if (w < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd p = { port, POLLOUT, 0 };
			poll(&p, 1, 100);
		} else {
			perror("vhw-agent: write");
			return;
		}
	}
}

static void reply(const char *fmt, const char *id)
{
	struct buf b = { 0 };
	char line[64];
	snprintf(line, sizeof line, fmt, id);
	if (adds(&b, line) == 0)
		send_buf(&b);
	free(b.p);
}

static void reply_err(const char *id, int err, const char *msg)
{
	struct buf b = { 0 };
	char head[64];
	snprintf(head, sizeof head, "ERR %s %d", id, err);
	if (!adds(&b, head) && !add_b64(&b, (const unsigned char *)msg,
					strlen(msg)) && !adds(&b, "\n"))
		send_buf(&b);
	free(b.p);
}

static long long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

static void on_sigchld(int sig)
{
	int e = errno;
	(void)sig;
	if (write(sigfd[1], "c", 1) < 0) {
		/* pipe full: a wakeup is already pending */
	}
	errno = e;
}

/* Reap every exited child (we are a subreaper, so orphans of earlier
 * commands land here too). Sets *status and returns 1 if pid was among. */
static int reap(pid_t pid, int *status)
{
	char c[64];
	int st, found = 0;
	pid_t r;
	while (read(sigfd[0], c, sizeof c) > 0)
		;
	while ((r = waitpid(-1, &st, WNOHANG)) > 0)
		if (r == pid) {
			*status = st;
			found = 1;
		}
	return found;
}

/* Read what is available from *fd into b; close it at EOF or error. */
static int pump(int *fd, struct buf *b)
{
	for (;;) {
		if (reserve(b, 65536))
			return -1;
		ssize_t n = read(*fd, b->p + b->len, 65536);
		if (n > 0) {
			b->len += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN) {
			close(*fd);
			*fd = -1;
		}
		return 0;
	}
}

static void do_run(const char *id, long long timeout, const char *cmd,
		   const char *in, size_t inlen)
{
	int pin[2] = { -1, -1 }, pout[2], perr[2];
	if (pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC) ||
	    (inlen && pipe2(pin, O_CLOEXEC))) {
		reply_err(id, errno, strerror(errno));
		return;          /* fd leak only on EMFILE, which is fatal anyway */
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pout[0]); close(pout[1]); close(perr[0]); close(perr[1]);
		if (inlen) { close(pin[0]); close(pin[1]); }
		reply_err(id, e, strerror(e));
		return;
	}
	if (pid == 0) {
		/* Own session and process group, so a timeout kills it all. */
		setsid();
		int fin = inlen ? pin[0] : open("/dev/null", O_RDONLY);
		dup2(fin, 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		signal(SIGPIPE, SIG_DFL);     /* ignored dispositions survive exec */
		signal(SIGCHLD, SIG_DFL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		perror("vhw-agent: exec /bin/sh");
		_exit(127);
	}
	close(pout[1]);
	close(perr[1]);
	int fi = -1, fo = pout[0], fe = perr[0];
	if (inlen) {
		close(pin[0]);
		fi = pin[1];
		fcntl(fi, F_SETFL, O_NONBLOCK);
	}
	fcntl(fo, F_SETFL, O_NONBLOCK);
	fcntl(fe, F_SETFL, O_NONBLOCK);

	struct buf out = { 0 }, err = { 0 };
	size_t inoff = 0;
	int status = 0, exited = 0, timed_out = 0, oom = 0;
	long long deadline = timeout > 0 ? now_ms() + timeout : -1;

	while (!exited) {
		struct pollfd p[4] = {
			{ sigfd[0], POLLIN, 0 }, { fo, POLLIN, 0 },
			{ fe, POLLIN, 0 }, { fi, POLLOUT, 0 },
		};
		int wait = -1;
		if (deadline >= 0 && !timed_out) {
			long long left = deadline - now_ms();
			wait = left > 0 ? (int)(left < 1000000 ? left : 1000000) : 0;
		}
		int r = poll(p, 4, wait);        /* fd -1 entries are skipped */
		if (r < 0 && errno != EINTR)
			break;
		if (deadline >= 0 && !timed_out && now_ms() >= deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);      /* in case setsid has not run yet */
			timed_out = 1;
		}
		if (r <= 0)
			continue;
		if (p[1].revents && pump(&fo, &out))
			oom = 1;
		if (p[2].revents && pump(&fe, &err))
			oom = 1;
		if (p[3].revents) {
			ssize_t w = write(fi, in + inoff, inlen - inoff);
			if (w > 0)
				inoff += w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
			    inoff == inlen) {
				close(fi);       /* done, or EPIPE: child quit reading */
				fi = -1;
			}
		}
		if (p[0].revents)
			exited = reap(pid, &status);
	}
	/* The child is gone, so all it wrote is in the pipes. Don't wait for
	 * EOF: a background grandchild may hold the pipes open forever. */
	if (fo >= 0 && pump(&fo, &out))
		oom = 1;
	if (fe >= 0 && pump(&fe, &err))
		oom = 1;
	if (fo >= 0) close(fo);
	if (fe >= 0) close(fe);
	if (fi >= 0) close(fi);

	if (!exited) {
		reply_err(id, EIO, "lost track of the command");
	} else if (oom) {
		reply_err(id, ENOMEM, "output too large for guest memory");
	} else {
		char head[96];
		const char *how = timed_out ? "timeout" :
			WIFSIGNALED(status) ? "signal" : "exit";
		int code = timed_out ? SIGKILL : WIFSIGNALED(status) ?
			WTERMSIG(status) : WEXITSTATUS(status);
		snprintf(head, sizeof head, "RES %s %s %d", id, how, code);
		struct buf b = { 0 };
		if (!adds(&b, head) &&
		    !add_b64(&b, (unsigned char *)out.p, out.len) &&
		    !add_b64(&b, (unsigned char *)err.p, err.len) &&
		    !adds(&b, "\n"))
			send_buf(&b);
		else
			reply_err(id, ENOMEM, "output too large for guest memory");
		free(b.p);
	}
	free(out.p);
	free(err.p);
}

static void do_put(const char *id, const char *modes, const char *path,
		   const char *data, size_t len)
{
	char *end;
	long mode = strtol(modes, &end, 8);
	if (!*modes || *end || mode < 0 || mode > 07777) {
		reply_err(id, EINVAL, "bad mode");
		return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		reply_err(id, errno, strerror(errno));
		return;
	}
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			int e = errno;
			close(fd);
			reply_err(id, e, strerror(e));
			return;
		}
		off += w;
	}
	if (close(fd) || chmod(path, mode)) {
		reply_err(id, errno, strerror(errno));
		return;
	}
	reply("OK %s\n", id);
}

static void do_get(const char *id, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		reply_err(id, errno, strerror(errno));
		return;
	}
	struct buf d = { 0 }, b = { 0 };
	for (;;) {      /* read to EOF: /proc and /sys files report size 0 */
		if (reserve(&d, 65536)) {
			close(fd);
			free(d.p);
			reply_err(id, ENOMEM, strerror(ENOMEM));
			return;
		}
		ssize_t n = read(fd, d.p + d.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(d.p);
			reply_err(id, e, strerror(e));
			return;
		}
		if (n == 0)
			break;
		d.len += n;
	}
	close(fd);
	char head[64];
	snprintf(head, sizeof head, "DATA %s", id);
	if (!adds(&b, head) && !add_b64(&b, (unsigned char *)d.p, d.len) &&
	    !adds(&b, "\n"))
		send_buf(&b);
	else
		reply_err(id, ENOMEM, strerror(ENOMEM));
	free(b.p);
	free(d.p);
}

/* Decode a base64 field that must be a C string (command, path). */
static int unb64_str(char *s)
{
	long n = unb64(s);
	return n < 0 || (size_t)n != strlen(s) ? -1 : 0;
}

static void handle(char *line, size_t len)
{
	char *f[6];
	int n = 0;
	if (len && line[len - 1] == '\r')
		line[--len] = 0;
	/* Split on single spaces; more than 5 fields is always wrong. */
	for (char *s = line; n < 6;) {
		f[n++] = s;
		s = strchr(s, ' ');
		if (!s)
			break;
		*s++ = 0;
	}
	/* The id is echoed back, so only accept a plain decimal number. */
	const char *id = "0";
	if (n >= 2 && f[1][0] && strlen(f[1]) <= 20 &&
	    strspn(f[1], "0123456789") == strlen(f[1]))
		id = f[1];
	const char *verb = f[0];

	if (!strcmp(verb, "PING") && n == 2 && id == f[1]) {
		reply("PONG %s\n", id);
	} else if (!strcmp(verb, "RUN") && n == 5 && id == f[1]) {
		char *end;
		long long t = strtoll(f[2], &end, 10);
		long in;
		if (!f[2][0] || *end || t < 0 || unb64_str(f[3]) ||
		    (in = unb64(f[4])) < 0)
			reply_err(id, EINVAL, "bad RUN request");
		else
			do_run(id, t, f[3], f[4], in);
	} else if (!strcmp(verb, "PUT") && n == 5 && id == f[1]) {
		long dl;
		if (unb64_str(f[3]) || !f[3][0] || (dl = unb64(f[4])) < 0)
			reply_err(id, EINVAL, "bad PUT request");
		else
			do_put(id, f[2], f[3], f[4], dl);
	} else if (!strcmp(verb, "GET") && n == 3 && id == f[1]) {
		if (unb64_str(f[2]) || !f[2][0])
			reply_err(id, EINVAL, "bad GET request");
		else
			do_get(id, f[2]);
	} else {
		reply_err(id, EINVAL, "unknown request");
	}
}

static void announce(void)
{
	char up[64] = "0", line[96];
	FILE *u = fopen("/proc/uptime", "r");
	if (u) {
		if (fscanf(u, "%63s", up) != 1)
			strcpy(up, "0");
		fclose(u);
	}
	snprintf(line, sizeof line, "READY %s\n", up);
	struct buf b = { line, strlen(line), 0 };
	send_buf(&b);
	/* /init's console log: the agent really runs now. */
	fprintf(stderr, "VHW-READY\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: vhw-agent DEVICE\n");
		return 2;
	}
	port = open(argv[1], O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (port < 0) {
		perror(argv[1]);
		return 1;
	}
	if (isatty(port)) {         /* UART fallback: no echo, no CR/LF games */
		struct termios t;
		if (tcgetattr(port, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(port, TCSANOW, &t);
		}
	}
	signal(SIGPIPE, SIG_IGN);       /* a child closing stdin early */
	if (pipe2(sigfd, O_CLOEXEC | O_NONBLOCK)) {
		perror("pipe2");
		return 1;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	/* Orphaned background processes of commands come to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	announce();

	struct buf in = { 0 };
	size_t scanned = 0;     /* in.p[0..scanned) holds no newline */
	int discard = 0;        /* dropping an over-long line (out of memory) */
	if (reserve(&in, 65536 + 1)) {
		perror("vhw-agent");
		return 1;
	}
	for (;;) {
		char *nl;
		while ((nl = memchr(in.p + scanned, '\n', in.len - scanned))) {
			size_t ll = nl - in.p;
			*nl = 0;
			if (discard)
				reply_err("0", ENOMEM, "request line too long");
			else
				handle(in.p, ll);
			discard = 0;
			memmove(in.p, nl + 1, in.len - ll - 1);
			in.len -= ll + 1;
			scanned = 0;
		}
		scanned = in.len;
		if (reserve(&in, 65536 + 1)) {
			discard = 1;    /* keep scanning for the newline */
			in.len = scanned = 0;
			if (reserve(&in, 65536 + 1)) {
				sleep(1);
				continue;
			}
		}
		/* The port is non-blocking: read until it runs dry, and poll
		 * only then (a virtio port hands out at most 4 KiB per read,
		 * so this halves the syscalls of a big PUT). */
		ssize_t r = read(port, in.p + in.len, 65536);
		if (r > 0) {
			in.len += r;
			continue;
		}
		if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
			/* Host side closed (virtio port reads EOF and polls HUP
			 * until it reconnects): wait instead of spinning. */
			usleep(100000);
			continue;
		}
		struct pollfd p[2] = { { port, POLLIN, 0 }, { sigfd[0], POLLIN, 0 } };
		if (poll(p, 2, -1) > 0 && p[1].revents) {
			int st;
			reap(-1, &st);
		}
	}
}

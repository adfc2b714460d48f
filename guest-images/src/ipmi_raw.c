/*
 * ipmi_raw: send one raw request to the BMC through the Linux IPMI driver
 * (/dev/ipmi0) and print the response, completion code first, as hex.
 *
 * usage: ipmi_raw [-n N] [-t MS] [-d DEV] NETFN CMD [DATA...]   (hex bytes)
 *   -n N   send the request N times (one at a time) and report the rate
 *          on stderr; the last response is printed
 *   -t MS  per-request timeout in milliseconds (default 5000; SSIF is slow)
 *   -d DEV device (default /dev/ipmi0)
 * Exit status: 0 when a response arrived (whatever its completion code),
 * 1 on timeout or driver error, 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/ipmi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int usage(void)
{
	fprintf(stderr, "usage: ipmi_raw [-n N] [-t MS] [-d DEV] NETFN CMD "
		"[DATA...]  (hex bytes)\n");
	return 2;
}

static int hexbyte(const char *s, unsigned char *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 16);
	if (!*s || *end || v > 0xff)
		return -1;
	*out = v;
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* One request/response; returns the response length or -1. */
static int transact(int fd, long msgid, unsigned char netfn, unsigned char cmd,
		    unsigned char *data, int len, unsigned char *rsp, int tmo)
{
	struct ipmi_system_interface_addr bmc = {
		.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
		.channel = IPMI_BMC_CHANNEL,
		.lun = 0,
	};
	struct ipmi_req req = {
		.addr = (unsigned char *)&bmc,
		.addr_len = sizeof bmc,
		.msgid = msgid,
		.msg = { .netfn = netfn, .cmd = cmd, .data_len = len,
			 .data = data },
	};
	if (ioctl(fd, IPMICTL_SEND_COMMAND, &req) < 0) {
		perror("ipmi_raw: IPMICTL_SEND_COMMAND");
		return -1;
	}
	double deadline = now() + tmo / 1000.0;
	for (;;) {
		double left = deadline - now();
		if (left <= 0) {
			fprintf(stderr, "ipmi_raw: no response within %d ms\n",
				tmo);
			return -1;
		}
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(fd, &rd);
		struct timeval tv = { (long)left,
				      (long)((left - (long)left) * 1e6) };
		int r = select(fd + 1, &rd, NULL, NULL, &tv);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("ipmi_raw: select");
			return -1;
		}
		if (r == 0)
			continue;
		struct ipmi_addr from;
		struct ipmi_recv recv = {
			.addr = (unsigned char *)&from,
			.addr_len = sizeof from,
			.msg = { .data = rsp, .data_len = IPMI_MAX_MSG_LENGTH },
		};
		if (ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			perror("ipmi_raw: IPMICTL_RECEIVE_MSG_TRUNC");
			return -1;
		}
		/* Skip anything that is not the answer to this request
		 * (events, stale answers of an earlier timed-out request). */
		if (recv.recv_type == IPMI_RESPONSE_RECV_TYPE &&
		    recv.msgid == msgid)
			return recv.msg.data_len;
	}
}

int main(int argc, char **argv)
{
	long count = 1;
	int tmo = 5000, opt;
	const char *dev = "/dev/ipmi0";
	while ((opt = getopt(argc, argv, "n:t:d:h")) != -1) {
		switch (opt) {
		case 'n': count = atol(optarg); break;
		case 't': tmo = atoi(optarg); break;
		case 'd': dev = optarg; break;
		default: return usage();
		}
	}
	int nargs = argc - optind;
	if (nargs < 2 || count < 1 || tmo < 1 ||
	    nargs - 2 > IPMI_MAX_MSG_LENGTH)
		return usage();
	unsigned char netfn, cmd, data[IPMI_MAX_MSG_LENGTH];
	unsigned char rsp[IPMI_MAX_MSG_LENGTH];
	if (hexbyte(argv[optind], &netfn) || hexbyte(argv[optind + 1], &cmd))
		return usage();
	for (int i = 2; i < nargs; i++)
		if (hexbyte(argv[optind + i], &data[i - 2]))
			return usage();

	int fd = open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "ipmi_raw: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	double t0 = now();
	int n = 0;
	for (long i = 0; i < count; i++) {
		n = transact(fd, i + 1, netfn, cmd, data, nargs - 2, rsp, tmo);
		if (n < 0)
			return 1;
	}
	double dt = now() - t0;
	for (int i = 0; i < n; i++)
		printf("%s%02x", i ? " " : "", rsp[i]);
	printf("\n");
	if (count > 1)
		fprintf(stderr, "%ld requests in %.3f s: %.1f requests/s, "
			"%.3f ms each\n", count, dt, count / dt,
			dt * 1000 / count);
	return 0;
}

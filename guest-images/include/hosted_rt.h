/*
 * hosted_rt.h - the rt_* calls of sparc_rt.h over libc, for the BSDs.
 *
 * openprom_conform runs as /init of vhw's Linux SPARC guests with the
 * freestanding sparc_rt.h; on NetBSD and OpenBSD sparc64 it is an ordinary
 * program, built in the guest with its cc, and these are the same calls
 * with the same contract: a result or -errno, never -1 and errno.
 */
#ifndef VHW_HOSTED_RT_H
#define VHW_HOSTED_RT_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define RT_HOSTED 1

static inline int rt_open(const char *path, int flags)
{
	int fd = open(path, flags);

	return fd < 0 ? -errno : fd;
}

static inline int rt_close(int fd)
{
	return close(fd) ? -errno : 0;
}

static inline long rt_write(int fd, const void *buf, size_t n)
{
	ssize_t w = write(fd, buf, n);

	return w < 0 ? -errno : (long)w;
}

static inline int rt_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? -errno : 0;
}

static inline void rt_sync(void)
{
	sync();
}

/* No console log level to lower: the host reads the program's own
 * stdout, not the console, so kernel messages cannot split its lines. */
static inline int rt_console_loglevel(int level)
{
	(void)level;
	return 0;
}

/* stdout may be a pipe or a file, where there is nothing to drain. */
static inline int rt_tcdrain(int fd)
{
	return tcdrain(fd) ? -errno : 0;
}

/* A hosted run goes back to its shell instead of halting the machine. */
static inline long rt_halt(void)
{
	return 0;
}

static inline void __attribute__((noreturn)) rt_exit(int code)
{
	exit(code);
}

#include "rt_text.h"

#endif

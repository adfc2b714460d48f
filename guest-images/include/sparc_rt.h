/*
 * sparc_rt.h - a tiny freestanding runtime for vhw's SPARC guest programs.
 *
 * The SS-5's CPU is a SPARC V8 and Debian has no V8 libc, so the in-guest
 * programs use no libc at all: _start, raw Linux system calls (sparc32 trap
 * 0x10, sparc64 trap 0x6d; number in %g1, arguments in %o0-%o5; the kernel
 * sets the carry flag on error and leaves a positive errno in %o0) and the
 * few string helpers gcc may call; number formatting is in rt_text.h.
 * Needs the kernel's uapi headers on the include path
 * (-I <headers_install>/include).  hosted_rt.h offers the same rt_* calls
 * over libc, for the BSDs.
 */
#ifndef VHW_SPARC_RT_H
#define VHW_SPARC_RT_H

typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ssize_t;

/* System call numbers, open flags and reboot magic from the kernel's own uapi
 * headers (make headers_install of the same tree; asm/unistd.h picks
 * unistd_32.h or unistd_64.h, generated from arch/sparc/kernel/syscalls/
 * syscall.tbl). */
#include <asm/unistd.h>
#include <asm/fcntl.h>
#include <linux/reboot.h>
#include <asm/ioctls.h>

#define SYS_exit __NR_exit
#define SYS_read __NR_read
#define SYS_write __NR_write
#define SYS_open __NR_open
#define SYS_close __NR_close
#define SYS_sync __NR_sync
#define SYS_ioctl __NR_ioctl
#define SYS_reboot __NR_reboot
#define SYS_mknod __NR_mknod
#define SYS_mount __NR_mount
#define SYS_syslog __NR_syslog

/* Returns the result, or -errno. */
static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long g1 __asm__("g1") = n;
	register long o0 __asm__("o0") = a;
	register long o1 __asm__("o1") = b;
	register long o2 __asm__("o2") = c;
	register long o3 __asm__("o3") = d;
	register long o4 __asm__("o4") = e;
	register long o5 __asm__("o5") = f;
	__asm__ volatile(
#ifdef __arch64__
		"ta 0x6d\n\t"
		"bcc,pt %%xcc, 1f\n\t"
		" nop\n\t"
#else
		"ta 0x10\n\t"
		"bcc 1f\n\t"
		" nop\n\t"
#endif
		"sub %%g0, %%o0, %%o0\n"
		"1:"
		: "+r"(o0), "+r"(o1)
		: "r"(g1), "r"(o2), "r"(o3), "r"(o4), "r"(o5)
		: "cc", "memory");
	return o0;
}

#define sys0(n) sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static inline int rt_open(const char *path, int flags) { return (int)sys3(SYS_open, path, flags, 0); }
static inline int rt_close(int fd) { return (int)sys1(SYS_close, fd); }
static inline long rt_write(int fd, const void *buf, size_t n) { return sys3(SYS_write, fd, buf, n); }
static inline int rt_ioctl(int fd, unsigned long cmd, void *arg) { return (int)sys3(SYS_ioctl, fd, cmd, arg); }
static inline void rt_sync(void) { sys0(SYS_sync); }
/* Only messages more urgent than LEVEL reach the console (klogctl
 * SYSLOG_ACTION_CONSOLE_LEVEL = 8): kernel messages then no longer split
 * the program's output lines. */
static inline int rt_console_loglevel(int level) { return (int)sys3(SYS_syslog, 8, 0, level); }
static inline int rt_mknod(const char *path, unsigned int mode, unsigned int dev)
{
	return (int)sys3(SYS_mknod, path, mode, dev);
}
static inline int rt_mount(const char *src, const char *dst, const char *type, unsigned long flags,
			   const void *data)
{
	return (int)sys6(SYS_mount, (long)src, (long)dst, (long)type, (long)flags, (long)data, 0);
}
/* tcdrain(3): TCSBRK with a non-zero argument returns once the tty has sent
 * everything written to it (and sends no break). */
static inline int rt_tcdrain(int fd) { return (int)sys3(SYS_ioctl, fd, TCSBRK, 1); }
static inline long rt_halt(void)
{
	return sys4(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_HALT, 0);
}
static inline void __attribute__((noreturn)) rt_exit(int code)
{
	for (;;)
		sys1(SYS_exit, code);
}

/* gcc may emit calls to these even with -ffreestanding. */
void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;
	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

#include "rt_text.h"

int main(int argc, char **argv, char **envp);

/* The kernel starts init with argc, argv[], NULL, envp[], NULL on the stack
 * (above the register window save area; sparc64 stacks are biased by 2047). */
#ifdef __arch64__
__asm__(".globl _start\n"
	"_start:\n"
	"	mov %g0, %fp\n"
	"	ldx [%sp + 2175], %o0\n"
	"	add %sp, 2183, %o1\n"
	"	sllx %o0, 3, %o2\n"
	"	add %o2, 8, %o2\n"
	"	add %o1, %o2, %o2\n"
	"	call main\n"
	"	 nop\n"
	"	mov 1, %g1\n"
	"	ta 0x6d\n");
#else
__asm__(".globl _start\n"
	"_start:\n"
	"	mov %g0, %fp\n"
	"	ld [%sp + 64], %o0\n"
	"	add %sp, 68, %o1\n"
	"	sll %o0, 2, %o2\n"
	"	add %o2, 4, %o2\n"
	"	add %o1, %o2, %o2\n"
	"	call main\n"
	"	 nop\n"
	"	mov 1, %g1\n"
	"	ta 0x10\n");
#endif

#endif

/* FreeBSD <sys/select.h>: fd_set of unsigned longs, FD_SETSIZE 1024. */
#ifndef SHIM_SYS_SELECT_H
#define SHIM_SYS_SELECT_H
#include <sys/types.h>
typedef unsigned long __fd_mask;
#define FD_SETSIZE	1024
#define _NFDBITS	(sizeof(__fd_mask) * 8)
typedef struct fd_set {
	__fd_mask __fds_bits[FD_SETSIZE / (sizeof(__fd_mask) * 8)];
} fd_set;
#define FD_ZERO(p)	do { \
	for (size_t _i = 0; _i < FD_SETSIZE / _NFDBITS; _i++) \
		(p)->__fds_bits[_i] = 0; \
} while (0)
#define FD_SET(n, p)	((p)->__fds_bits[(n) / _NFDBITS] |= \
	(__fd_mask)1 << ((n) % _NFDBITS))
#define FD_ISSET(n, p)	(((p)->__fds_bits[(n) / _NFDBITS] & \
	((__fd_mask)1 << ((n) % _NFDBITS))) != 0)
struct timeval {
	time_t tv_sec;
	suseconds_t tv_usec;
};
int select(int, fd_set *, fd_set *, fd_set *, struct timeval *);
#endif

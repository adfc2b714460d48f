/* NetBSD <sys/select.h>: fd_set of 32-bit masks, FD_SETSIZE 256. */
#ifndef SHIM_SYS_SELECT_H
#define SHIM_SYS_SELECT_H
#include <sys/types.h>
typedef uint32_t __fd_mask;
#define FD_SETSIZE	256
#define __NFDBITS	(32)
typedef struct fd_set {
	__fd_mask fds_bits[FD_SETSIZE / __NFDBITS];
} fd_set;
#define FD_SET(n, p)	((p)->fds_bits[(unsigned)(n) / __NFDBITS] |= \
	(1U << ((unsigned)(n) % __NFDBITS)))
#define FD_ISSET(n, p)	((p)->fds_bits[(unsigned)(n) / __NFDBITS] & \
	(1U << ((unsigned)(n) % __NFDBITS)))
#define FD_ZERO(p)	do { \
	for (unsigned _i = 0; _i < FD_SETSIZE / __NFDBITS; _i++) \
		(p)->fds_bits[_i] = 0; \
} while (0)
struct timeval {
	time_t tv_sec;
	suseconds_t tv_usec;
};
int select(int, fd_set *, fd_set *, fd_set *, struct timeval *);
#endif

/* illumos <sys/select.h>, 64-bit: FD_SETSIZE 65536, fds_bits of longs. */
#ifndef SHIM_SYS_SELECT_H
#define SHIM_SYS_SELECT_H
#include <sys/types.h>
typedef long fd_mask;
#define FD_SETSIZE	65536
#define NFDBITS		(sizeof(fd_mask) * 8)
typedef struct fd_set {
	long fds_bits[FD_SETSIZE / (sizeof(fd_mask) * 8)];
} fd_set;
#define FD_SET(n, p)	((p)->fds_bits[(n) / NFDBITS] |= (1ul << ((n) % NFDBITS)))
#define FD_ISSET(n, p)	(((p)->fds_bits[(n) / NFDBITS] & (1ul << ((n) % NFDBITS))) != 0l)
#define FD_ZERO(p)	do { \
	for (size_t _i = 0; _i < FD_SETSIZE / NFDBITS; _i++) \
		(p)->fds_bits[_i] = 0; \
} while (0)
struct timeval {
	time_t tv_sec;
	suseconds_t tv_usec;
};
extern int select(int, fd_set *, fd_set *, fd_set *, struct timeval *);
#endif

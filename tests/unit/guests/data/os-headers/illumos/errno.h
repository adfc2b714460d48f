/*
 * illumos <errno.h> (usr/src/uts/common/sys/errno.h): errno through
 * ___errno(), and the values the guest programs name (System V numbering:
 * EAGAIN 11, ENOTSUP and EOPNOTSUPP distinct).
 */
#ifndef SHIM_ERRNO_H
#define SHIM_ERRNO_H
extern int *___errno(void);
#define errno (*(___errno()))

#define EPERM		1
#define ENOENT		2
#define EINTR		4
#define EIO		5
#define ENXIO		6
#define E2BIG		7
#define EBADF		9
#define EAGAIN		11
#define ENOMEM		12
#define EACCES		13
#define EFAULT		14
#define EBUSY		16
#define ENODEV		19
#define EINVAL		22
#define ENOTTY		25
#define EFBIG		27
#define ENOTSUP		48
#define ENAMETOOLONG	78
#define EMSGSIZE	97
#define EOPNOTSUPP	122
#define ETIMEDOUT	145
#define EWOULDBLOCK	EAGAIN
#endif

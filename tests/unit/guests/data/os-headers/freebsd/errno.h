/*
 * FreeBSD <errno.h> (sys/sys/errno.h): errno through __error(), and the
 * values the guest programs name (4.4BSD numbering; ENOTSUP is EOPNOTSUPP).
 */
#ifndef SHIM_ERRNO_H
#define SHIM_ERRNO_H
int *__error(void);
#define errno (*__error())

#define EPERM		1
#define ENOENT		2
#define EINTR		4
#define EIO		5
#define ENXIO		6
#define E2BIG		7
#define EBADF		9
#define ENOMEM		12
#define EACCES		13
#define EFAULT		14
#define EBUSY		16
#define ENODEV		19
#define EINVAL		22
#define ENOTTY		25
#define EFBIG		27
#define EAGAIN		35
#define EWOULDBLOCK	EAGAIN
#define EMSGSIZE	40
#define EOPNOTSUPP	45
#define ENOTSUP		EOPNOTSUPP
#define ETIMEDOUT	60
#define ENAMETOOLONG	63
#endif

/* OpenBSD <errno.h> (sys/sys/errno.h): errno through __errno(). */
#ifndef SHIM_ERRNO_H
#define SHIM_ERRNO_H
int *__errno(void);
#define errno (*__errno())

#define EPERM		1
#define ENOENT		2
#define EIO		5
#define ENXIO		6
#define EBADF		9
#define ENOMEM		12
#define EFAULT		14
#define EBUSY		16
#define ENODEV		19
#define EINVAL		22
#define ENOTTY		25
#define EAGAIN		35
#define ENAMETOOLONG	63
#endif

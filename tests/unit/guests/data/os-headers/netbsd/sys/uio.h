/* NetBSD <sys/uio.h>: struct iovec (IOPIOCGSTATUS takes one). */
#ifndef SHIM_SYS_UIO_H
#define SHIM_SYS_UIO_H
#include <sys/types.h>
struct iovec {
	void *iov_base;
	size_t iov_len;
};
#endif

/*
 * illumos <sys/ioccom.h> (usr/src/uts/common/sys/ioccom.h): an 8-bit
 * parameter length (IOCPARM_MASK 0xff) and _IO* results cast to int, the
 * type of ioctl(2)'s request on illumos.
 */
#ifndef SHIM_SYS_IOCCOM_H
#define SHIM_SYS_IOCCOM_H
#include <stdint.h>
#define IOCPARM_MASK	0xff
#define IOC_VOID	0x20000000
#define IOC_OUT		0x40000000
#define IOC_IN		0x80000000
#define IOC_INOUT	(IOC_IN | IOC_OUT)
#define _IO(x, y)	(IOC_VOID | ((x) << 8) | (y))
#define _IOR(x, y, t)	((int)((uint32_t)(IOC_OUT | \
	(((sizeof(t)) & IOCPARM_MASK) << 16) | ((x) << 8) | (y))))
#define _IOW(x, y, t)	((int)((uint32_t)(IOC_IN | \
	(((sizeof(t)) & IOCPARM_MASK) << 16) | ((x) << 8) | (y))))
#define _IOWR(x, y, t)	((int)((uint32_t)(IOC_INOUT | \
	(((sizeof(t)) & IOCPARM_MASK) << 16) | ((x) << 8) | (y))))
#endif

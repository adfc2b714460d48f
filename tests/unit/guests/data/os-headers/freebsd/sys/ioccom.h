/*
 * FreeBSD <sys/ioccom.h>: ioctl numbers carry direction and a 13-bit
 * parameter length (IOCPARM_SHIFT 13) above group and number; they are
 * unsigned long, and so is ioctl(2)'s request.
 */
#ifndef SHIM_SYS_IOCCOM_H
#define SHIM_SYS_IOCCOM_H
#define IOCPARM_SHIFT	13
#define IOCPARM_MASK	((1 << IOCPARM_SHIFT) - 1)
#define IOC_VOID	0x20000000UL
#define IOC_OUT		0x40000000UL
#define IOC_IN		0x80000000UL
#define IOC_INOUT	(IOC_IN | IOC_OUT)
#define _IOC(inout, group, num, len) ((unsigned long)((inout) | \
	(((len) & IOCPARM_MASK) << 16) | ((group) << 8) | (num)))
#define _IO(g, n)	_IOC(IOC_VOID, (g), (n), 0)
#define _IOR(g, n, t)	_IOC(IOC_OUT, (g), (n), sizeof(t))
#define _IOW(g, n, t)	_IOC(IOC_IN, (g), (n), sizeof(t))
#define _IOWR(g, n, t)	_IOC(IOC_INOUT, (g), (n), sizeof(t))
int ioctl(int, unsigned long, ...);
#endif

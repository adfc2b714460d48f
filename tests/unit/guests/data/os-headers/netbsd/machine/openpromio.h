/*
 * NetBSD sparc64 <machine/openpromio.h> (sys/arch/sparc64/include, which
 * includes sys/arch/sparc/include/openpromio.h): the 4.4BSD openprom(4)
 * interface of seed 004.  Needs <sys/ioccom.h> from its includer.
 */
#ifndef SHIM_MACHINE_OPENPROMIO_H
#define SHIM_MACHINE_OPENPROMIO_H
struct opiocdesc {
	int op_nodeid;
	int op_namelen;
	char *op_name;
	int op_buflen;
	char *op_buf;
};

#define OPIOCGET	_IOWR('O', 1, struct opiocdesc)
#define OPIOCSET	_IOW('O', 2, struct opiocdesc)
#define OPIOCNEXTPROP	_IOWR('O', 3, struct opiocdesc)
#define OPIOCGETOPTNODE	_IOR('O', 4, int)
#define OPIOCGETNEXT	_IOWR('O', 5, int)
#define OPIOCGETCHILD	_IOWR('O', 6, int)
#define OPIOCFINDDEVICE	_IOWR('O', 7, struct opiocdesc)
#endif

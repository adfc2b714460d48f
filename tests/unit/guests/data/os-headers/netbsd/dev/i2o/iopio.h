/*
 * NetBSD <dev/i2o/iopio.h> (sys/dev/i2o/iopio.h, rev. 1.9): iop(4)'s
 * pass-through.  struct ioppt carries one message frame, a reply buffer,
 * a timeout and up to IOP_MAX_MSG_XFERS buffers; IOPIOCGSTATUS copies the
 * IOP's status block out through a struct iovec (<sys/uio.h>).
 */
#ifndef SHIM_DEV_I2O_IOPIO_H
#define SHIM_DEV_I2O_IOPIO_H
#include <sys/types.h>
#include <sys/ioccom.h>

#define IOP_MAX_MSG_XFERS	3
#define IOP_MAX_OUTBOUND	256
#define IOP_MAX_INBOUND		256
#define IOP_MF_RESERVE		4
#define IOP_MAX_XFER		64*1024
#define IOP_MAX_MSG_SIZE	160
#define IOP_MIN_MSG_SIZE	128

struct iop_tidmap {
	u_short it_tid;
	u_short it_flags;
	char it_dvname[16];
};
#define IT_CONFIGURED	0x02

struct ioppt_buf {
	void *ptb_data;
	size_t ptb_datalen;
	int ptb_out;
};

struct ioppt {
	void *pt_msg;
	size_t pt_msglen;
	void *pt_reply;
	size_t pt_replylen;
	int pt_timo;
	int pt_nbufs;
	struct ioppt_buf pt_bufs[IOP_MAX_MSG_XFERS];
};

#define IOPIOCPT	_IOWR('u', 0, struct ioppt)
#define IOPIOCGLCT	_IOWR('u', 1, struct iovec)
#define IOPIOCGSTATUS	_IOWR('u', 2, struct iovec)
#define IOPIOCRECONFIG	_IO('u', 3)
#define IOPIOCGTIDMAP	_IOWR('u', 4, struct iovec)
#endif

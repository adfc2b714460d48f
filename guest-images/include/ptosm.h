/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ptosm.h - I2O pass-through (ptosm) interface of /dev/i2opt.
 *
 * The UnixWare 7 / OpenServer 6 HDK "I2O pass-through OSM (ptosm)"
 * interface, implemented for Linux by vhw's i2o_ptosm module. Pointers are
 * native (64-bit on x86-64); there is no 32-bit compat layout.
 *
 * I2O_PT_NUMIOPS: ioctl(fd, I2O_PT_NUMIOPS, &int) -> number of IOPs.
 * I2O_PT_MSGTFR:  ioctl(fd, I2O_PT_MSGTFR, &I2OptUserMsg_t) sends one
 *   message and waits up to 10 s for its single reply. The driver fills in
 *   the SGL offset, message flags (0), message size, initiator TID (host = 1)
 *   and both contexts (user values are not preserved), and appends one SIMPLE
 *   SGL element per used Data[] entry (Length != 0, in order from 0). It
 *   copies min(ReplyLength, 128) bytes of the reply frame (zero past the
 *   reply's own size) to Reply, then the READ buffers.
 *
 * Errors: EINVAL (bad Version/IopNum/lengths/Flags/Data order, target TID 1,
 * message plus SGLs too big for the inbound frame, Length above
 * I2O_PT_MAX_DATA, or a function that never produces a reply frame: UtilNOP
 * 0x00, UtilEventRegister 0x13, ExecOutboundInit 0xA1, ExecIopReset 0xBD),
 * ENOMEM (no buffer, or no free inbound frame within 1 s), EFAULT (bad user
 * pointer), ETIMEDOUT (no reply in 10 s, e.g. a held LctNotify), EINTR
 * (fatal signal while waiting), ENODEV (IOP removed). A failure reply from
 * the IOP (ReqStatus != 0, or a transport failure) is a successful ioctl
 * with the reply in Reply.
 *
 * Linux extensions to the HDK interface:
 *  - MessageLength 12 is accepted; the driver adds the TransactionContext
 *    word, so the SGLs start at word 4.
 *  - ExecStatusGet (0xA0) produces no reply frame on an IOP. The driver sends
 *    it with its own status block, waits for the block, copies the 88 bytes
 *    (I2O_PT_STATUS_BLOCK_SIZE) into the first READ Data[] buffer (which must
 *    hold them) and synthesizes a 5-word success reply.
 */
#ifndef _PTOSM_H
#define _PTOSM_H

#ifdef __KERNEL__
#include <linux/types.h>
#define I2O_PT_UPTR void __user *
#else
#define I2O_PT_UPTR void *
#endif

#define I2O_IOCTL		(('I' << 24) | ('2' << 16) | ('O' << 8))
#define I2O_PT_NUMIOPS		(I2O_IOCTL | 0)
#define I2O_PT_MSGTFR		(I2O_IOCTL | 1)

#define I2O_PT_VERSION_1	1
#define I2O_CURRENT_VERSION	I2O_PT_VERSION_1

#define MAX_PT_SGL_BUFFERS	4

/* I2OPtData.Flags */
#define I2O_PT_DATA_READ	1	/* IOP -> user */
#define I2O_PT_DATA_WRITE	2	/* user -> IOP */

/* Limits of this implementation. */
#define I2O_PT_MAX_DATA		(1024 * 1024)	/* bytes per Data[] element */
#define I2O_PT_STATUS_BLOCK_SIZE 88

typedef struct {
	I2O_PT_UPTR	Data;
	unsigned int	Length;
	unsigned int	Flags;
} I2OPtData;

typedef struct {
	unsigned char	Version;
	unsigned char	IopNum;
	unsigned char	Pad[2];
	I2O_PT_UPTR	Message;
	unsigned int	MessageLength;
	I2O_PT_UPTR	Reply;
	unsigned int	ReplyLength;
	I2OPtData	Data[MAX_PT_SGL_BUFFERS];
} I2OptUserMsg_t;

#endif /* _PTOSM_H */

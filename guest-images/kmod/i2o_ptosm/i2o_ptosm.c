// SPDX-License-Identifier: GPL-2.0
/*
 * i2o_ptosm - a minimal I2O 1.5 host driver with the UnixWare "ptosm"
 * pass-through interface on /dev/i2opt (see ptosm.h).
 *
 * Binds to PCI class 0x0E00, prog-if 0 or 1, maps the first memory BAR and
 * brings each IOP to OPERATIONAL itself: StatusGet, IopReset (if needed),
 * OutboundInit, reply frames, IopClear (if needed), HrtGet, SysTabSet,
 * SysEnable and one LctNotify. Replies are taken from the outbound FIFO by
 * the interrupt handler, or by polling 0x44 when the IOP's interrupt is never
 * delivered (QEMU 7.2's x-pci-proxy-dev under TCG): the first reply of the
 * init sequence decides, and one line in the log says which mode is used.
 *
 * One message per IOP is in flight at a time (iop->msg_lock). The system
 * table an IOP gets lists the IOPs bound before it and itself (IOP id =
 * unit + 2); the HRT is read (1 KiB) but not used. Data buffers are
 * coherent bounce buffers below 4 GiB; if a request gets no reply they are
 * kept until the IOP answers or the device goes away. On removal the IOP is
 * reset, so reloading the module brings it up again.
 */

#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>

#include "ptosm.h"

#define DRV_NAME		"i2o_ptosm"

/* Messaging unit registers (offsets in the first memory BAR). */
#define I2O_IRQ_STATUS		0x30
#define I2O_IRQ_MASK		0x34
#define I2O_IN_PORT		0x40
#define I2O_OUT_PORT		0x44
#define I2O_OUTBOUND_POST	0x08
#define I2O_EMPTY		0xFFFFFFFFu

/* Message header. */
#define I2O_VERSION_11		0x0001
#define SGL_OFFSET(w)		((w) << 4)
#define MSG_FAIL		0x2000	/* word 0 bit 13 */
#define MSG_REPLY		0x8000
#define HOST_TID		1
#define ADAPTER_TID		0
#define MSG_HEAD0(words, sgl)	((words) << 16 | SGL_OFFSET(sgl) | I2O_VERSION_11)
#define MSG_HEAD1(fn, tid)	((fn) << 24 | HOST_TID << 12 | (tid))

/* SGL element flags (bits 24..31 of the first word). */
#define SGL_SIMPLE		0x10000000
#define SGL_DIR_OUT		0x04000000
#define SGL_END_BUFFER		0x40000000
#define SGL_LAST		0x80000000

/* Functions. */
#define I2O_CMD_UTIL_NOP	0x00
#define I2O_CMD_UTIL_EVT_REG	0x13
#define I2O_CMD_STATUS_GET	0xA0
#define I2O_CMD_OUTBOUND_INIT	0xA1
#define I2O_CMD_LCT_NOTIFY	0xA2
#define I2O_CMD_SYS_TAB_SET	0xA3
#define I2O_CMD_HRT_GET		0xA8
#define I2O_CMD_IOP_RESET	0xBD
#define I2O_CMD_IOP_CLEAR	0xBE
#define I2O_CMD_SYS_ENABLE	0xD1

/* IOP states. */
#define IOP_RESET		0x02
#define IOP_HOLD		0x04
#define IOP_READY		0x05
#define IOP_OPERATIONAL		0x08
#define IOP_FAILED		0x10
#define IOP_FAULTED		0x11

/* Status block (88 bytes, byte 87 = 0xFF when complete). */
#define SB_SIZE			I2O_PT_STATUS_BLOCK_SIZE
#define SB_ORG_ID		0
#define SB_VERSION		8	/* u16: segment:12, i2o_version:4 */
#define SB_STATE		10
#define SB_MSG_TYPE		11
#define SB_IN_FRAME_SIZE	12	/* u16, words */
#define SB_MAX_OUTBOUND		24
#define SB_PRODUCT_ID		28	/* char[24] */
#define SB_EXPECTED_LCT		52
#define SB_CAPABILITIES		56
#define SB_CUR_MEM_SIZE		64
#define SB_CUR_MEM_BASE		68
#define SB_CUR_IO_SIZE		76
#define SB_CUR_IO_BASE		80
#define SB_SYNC			87

#define REPLY_FRAME_BYTES	128	/* outbound frame size we ask for */
#define REPLY_FRAMES		64
#define MAX_FRAME_WORDS		128	/* largest inbound frame we handle */
#define MSG_TIMEOUT_MS		10000
#define STATUS_TIMEOUT_MS	5000
#define RESET_TIMEOUT_MS	30000
#define MFA_TIMEOUT_MS		1000
#define DETECT_MS		50
#define HRT_BYTES		1024
#define SYSTAB_ENTRY_BYTES	32
#define SYSTAB_HDR_BYTES	16
#define MAX_IOPS		32
#define POOL_PAGES		8	/* preallocated one-page bounce buffers */

#define INIT_ICNTXT		0x50544F53	/* "PTOS": our initiator context */

struct ptosm_buf {
	void *virt;
	dma_addr_t dma;
	size_t len;
	int slot;			/* page of iop->pool, or -1 */
};

/* Buffers of a request whose reply never came: the IOP may still write them. */
struct ptosm_orphan {
	struct list_head list;
	u32 tctx;
	bool replied;
	int nbufs;
	struct ptosm_buf bufs[MAX_PT_SGL_BUFFERS];
};

struct i2o_iop {
	struct kref ref;
	struct list_head list;		/* ptosm_iops, under ptosm_lock */
	struct pci_dev *pdev;
	void __iomem *base;
	resource_size_t bar_phys;
	resource_size_t bar_len;
	int bar;
	int unit;			/* IOP id = unit + 2 */
	bool irq_requested;
	bool polled;
	bool dead;

	struct mutex msg_lock;		/* one message in flight */
	spinlock_t lock;		/* outbound FIFO, waiter, orphans */
	wait_queue_head_t wq;

	u32 wait_tctx;
	bool waiting;
	bool done;
	u32 reply[REPLY_FRAME_BYTES / 4];
	u32 next_tctx;
	struct list_head orphans;

	u8 *status;			/* status block, then a status word */
	dma_addr_t status_dma;
	u8 sb[SB_SIZE];			/* last complete status block */
	u32 in_frame_words;

	void *out_virt;			/* reply frames */
	dma_addr_t out_dma;
	u32 out_frames;

	void *pool;			/* POOL_PAGES pages, busy bits under lock */
	dma_addr_t pool_dma;
	unsigned long pool_busy;

	int lct_entries;
};

static LIST_HEAD(ptosm_iops);
static DEFINE_MUTEX(ptosm_lock);	/* ptosm_iops, ptosm_units */
static DECLARE_BITMAP(ptosm_units, MAX_IOPS);

static u16 sb_u16(const u8 *sb, int off)
{
	return sb[off] | sb[off + 1] << 8;
}

static u32 sb_u32(const u8 *sb, int off)
{
	return sb_u16(sb, off) | (u32)sb_u16(sb, off + 2) << 16;
}

static void iop_release(struct kref *ref)
{
	struct i2o_iop *iop = container_of(ref, struct i2o_iop, ref);

	pci_dev_put(iop->pdev);
	kfree(iop);
}

/* ------------------------------------------------------------ messages */

static int iop_get_mfa(struct i2o_iop *iop, u32 *mfa, unsigned int ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(ms);
	u32 m;

	for (;;) {
		m = readl(iop->base + I2O_IN_PORT);
		if (m != I2O_EMPTY)
			break;
		if (iop->dead || time_after(jiffies, deadline))
			return -ENOMEM;
		usleep_range(50, 200);
	}
	if ((m & 3) || m < 0x48 || m > iop->bar_len - iop->in_frame_words * 4) {
		dev_err_ratelimited(&iop->pdev->dev,
				    "IOP returned bad inbound MFA %#x\n", m);
		return -EIO;
	}
	*mfa = m;
	return 0;
}

/*
 * Fill the frame at mfa and post it. 8-byte stores where aligned: behind
 * x-pci-proxy-dev every store is one round trip to the device.
 */
static void iop_post(struct i2o_iop *iop, u32 mfa, const u32 *msg, int words)
{
	void __iomem *dst = iop->base + mfa;
	int i = 0;

	for (; !(mfa & 7) && i + 2 <= words; i += 2)
		writeq((u64)msg[i + 1] << 32 | msg[i], dst + i * 4);
	for (; i < words; i++)
		writel(msg[i], dst + i * 4);
	writel(mfa, iop->base + I2O_IN_PORT);
}

/* Release an inbound frame the host owns with a UtilNOP. */
static void iop_nop_mfa(struct i2o_iop *iop, u32 mfa)
{
	void __iomem *dst = iop->base + mfa;

	writel(MSG_HEAD0(3, 0), dst);
	writel(MSG_HEAD1(I2O_CMD_UTIL_NOP, ADAPTER_TID), dst + 4);
	writel(0, dst + 8);
	writel(mfa, iop->base + I2O_IN_PORT);
}

/* One reply frame at bus address m; called with iop->lock held. */
static void iop_handle_reply(struct i2o_iop *iop, u32 m)
{
	struct ptosm_orphan *o;
	u32 off, *frame, tctx, w0, words, pm;

	off = m - (u32)iop->out_dma;
	if (m < (u32)iop->out_dma || off >= iop->out_frames * REPLY_FRAME_BYTES ||
	    off % REPLY_FRAME_BYTES) {
		dev_err_ratelimited(&iop->pdev->dev,
				    "IOP posted foreign reply MFA %#x\n", m);
		return;		/* not ours: never hand it back */
	}
	frame = iop->out_virt + off;
	w0 = le32_to_cpu(frame[0]);
	tctx = le32_to_cpu(frame[3]);

	if (w0 & MSG_FAIL) {
		/* Transport failure: body[3] is the preserved inbound MFA. */
		pm = le32_to_cpu(frame[7]);
		if (!(pm & 3) && pm >= 0x48 && pm <= iop->bar_len - 16) {
			u32 ptx = readl(iop->base + pm + 12);

			if (!(iop->waiting && tctx == iop->wait_tctx))
				tctx = ptx;
			iop_nop_mfa(iop, pm);
		}
	}

	if (iop->waiting && tctx == iop->wait_tctx) {
		words = w0 >> 16;
		if (words < 5 || words > REPLY_FRAME_BYTES / 4)
			words = REPLY_FRAME_BYTES / 4;	/* bogus size: all */
		memset(iop->reply, 0, sizeof(iop->reply));
		memcpy(iop->reply, frame, words * 4);
		iop->waiting = false;
		iop->done = true;
		wake_up(&iop->wq);
	} else {
		bool known = false;

		list_for_each_entry(o, &iop->orphans, list) {
			if (o->tctx == tctx) {
				o->replied = true;
				known = true;
			}
		}
		if (!known)
			dev_dbg(&iop->pdev->dev,
				"unsolicited reply, context %#x\n", tctx);
	}
	writel(m, iop->base + I2O_OUT_PORT);
}

/*
 * Drain the outbound FIFO; called with iop->lock held. Polled (!irq), stop
 * once the awaited reply is in: every read is a round trip to the device
 * behind x-pci-proxy-dev, and whatever follows it stays for the next poll.
 */
static int iop_drain(struct i2o_iop *iop, bool irq)
{
	int n;
	u32 m;

	for (n = 0; n < 2 * REPLY_FRAMES; n++) {
		if (irq && !(readl(iop->base + I2O_IRQ_STATUS) & I2O_OUTBOUND_POST))
			break;
		m = readl(iop->base + I2O_OUT_PORT);
		if (m == I2O_EMPTY && irq)
			m = readl(iop->base + I2O_OUT_PORT);	/* IOP erratum */
		if (m == I2O_EMPTY)
			break;
		iop_handle_reply(iop, m);
		if (!irq && iop->done)
			return n + 1;
	}
	return n;
}

static irqreturn_t iop_isr(int irq, void *data)
{
	struct i2o_iop *iop = data;
	int n;

	spin_lock(&iop->lock);
	n = iop->dead ? 0 : iop_drain(iop, true);
	spin_unlock(&iop->lock);
	return n ? IRQ_HANDLED : IRQ_NONE;
}

static void iop_arm(struct i2o_iop *iop, u32 tctx)
{
	unsigned long flags;

	spin_lock_irqsave(&iop->lock, flags);
	iop->wait_tctx = tctx;
	iop->waiting = true;
	iop->done = false;
	spin_unlock_irqrestore(&iop->lock, flags);
}

/* Stop waiting; true if the reply is in iop->reply. */
static bool iop_disarm(struct i2o_iop *iop)
{
	unsigned long flags;
	bool done;

	spin_lock_irqsave(&iop->lock, flags);
	iop->waiting = false;
	done = iop->done;
	spin_unlock_irqrestore(&iop->lock, flags);
	return done;
}

static bool iop_poll_once(struct i2o_iop *iop)
{
	unsigned long flags;
	bool done;

	spin_lock_irqsave(&iop->lock, flags);
	if (!iop->dead)
		iop_drain(iop, false);
	done = iop->done;
	spin_unlock_irqrestore(&iop->lock, flags);
	return done;
}

/* The one line that says how this IOP's replies are taken. */
static void iop_go_polled(struct i2o_iop *iop)
{
	iop->polled = true;
	writel(0xFFFFFFFF, iop->base + I2O_IRQ_MASK);
	if (iop->irq_requested) {
		free_irq(iop->pdev->irq, iop);
		iop->irq_requested = false;
	}
	dev_info(&iop->pdev->dev, "interrupts not delivered, using polled mode\n");
}

/*
 * Wait for the reply armed with iop_arm(). @detect: the first reply of the
 * init sequence; if it sits in the outbound FIFO for DETECT_MS without the
 * interrupt handler taking it, switch this IOP to polled mode.
 */
static int iop_wait(struct i2o_iop *iop, unsigned int ms, bool detect)
{
	ktime_t start = ktime_get(), seen = 0, now;
	s64 deadline_us = (s64)ms * 1000, el;

	while (!iop->polled) {
		long left = wait_event_killable_timeout(iop->wq,
				READ_ONCE(iop->done) || READ_ONCE(iop->dead),
				msecs_to_jiffies(detect ? 10 : ms));
		if (READ_ONCE(iop->done))
			goto out;
		if (iop->dead)
			return -ENODEV;
		if (left < 0)
			return -EINTR;
		now = ktime_get();
		if (!detect) {
			if (!left)
				return -ETIMEDOUT;
			continue;
		}
		if (ktime_us_delta(now, start) > deadline_us)
			return -ETIMEDOUT;
		if (!(readl(iop->base + I2O_IRQ_STATUS) & I2O_OUTBOUND_POST)) {
			seen = 0;
		} else if (!seen) {
			seen = now;
		} else if (ktime_ms_delta(now, seen) >= DETECT_MS) {
			iop_go_polled(iop);
		}
	}

	for (;;) {
		if (iop_poll_once(iop))
			goto out;
		if (iop->dead)
			return -ENODEV;
		if (fatal_signal_pending(current))
			return -EINTR;
		el = ktime_us_delta(ktime_get(), start);
		if (el > deadline_us)
			return -ETIMEDOUT;
		if (el < 2000)
			cpu_relax();
		else if (el < 100000)
			usleep_range(20, 50);
		else
			usleep_range(500, 1000);
	}
out:
	if (detect && !iop->polled)
		dev_info(&iop->pdev->dev, "interrupt mode\n");
	return 0;
}

/*
 * Post a reply-producing message built by the caller (contexts are set
 * here) and wait for its reply, left in iop->reply. Returns 0 with a reply,
 * or a negative errno; when in_flight(rc), *tctxp says which context the
 * IOP may still answer. Called with msg_lock held.
 */
static int iop_post_wait(struct i2o_iop *iop, u32 *msg, int words,
			 unsigned int ms, bool detect, u32 *tctxp)
{
	u32 mfa, tctx;
	int rc;

	rc = iop_get_mfa(iop, &mfa, MFA_TIMEOUT_MS);
	if (rc)
		return rc;
	tctx = 0x80000000 | (iop->next_tctx++ & 0x7FFFFFFF);
	msg[2] = INIT_ICNTXT;
	msg[3] = tctx;
	if (tctxp)
		*tctxp = tctx;
	iop_arm(iop, tctx);
	iop_post(iop, mfa, msg, words);
	rc = iop_wait(iop, ms, detect);
	if (iop_disarm(iop))
		rc = 0;		/* the reply came in just after the wait ended */
	return rc;
}

/* After a failed wait: the IOP may still answer, and write the buffers. */
static bool in_flight(int rc)
{
	return rc == -ETIMEDOUT || rc == -ENODEV || rc == -EINTR;
}

/* ReqStatus of the last reply, -EIO for a transport failure. */
static int iop_reply_status(struct i2o_iop *iop)
{
	if (le32_to_cpu(iop->reply[0]) & MSG_FAIL)
		return -EIO;
	return le32_to_cpu(iop->reply[4]) >> 24;
}

/* Init-time message whose reply must be SUCCESS. */
static int iop_exec(struct i2o_iop *iop, const char *what, u32 *msg,
		    int words, unsigned int ms, bool detect)
{
	int rc = iop_post_wait(iop, msg, words, ms, detect, NULL);

	if (!rc)
		rc = iop_reply_status(iop);
	if (rc) {
		dev_err(&iop->pdev->dev, "%s failed (%d)\n", what, rc);
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/* ExecStatusGet: no reply frame; poll the sync byte of the status block. */
static int iop_status_get(struct i2o_iop *iop)
{
	unsigned long deadline;
	u32 msg[9], mfa;
	int rc;

	rc = iop_get_mfa(iop, &mfa, STATUS_TIMEOUT_MS);
	if (rc)
		return rc;
	memset(iop->status, 0, SB_SIZE);
	wmb();
	msg[0] = MSG_HEAD0(9, 0);
	msg[1] = MSG_HEAD1(I2O_CMD_STATUS_GET, ADAPTER_TID);
	msg[2] = INIT_ICNTXT;
	msg[3] = 0;
	msg[4] = 0;
	msg[5] = 0;
	msg[6] = lower_32_bits(iop->status_dma);
	msg[7] = upper_32_bits(iop->status_dma);
	msg[8] = SB_SIZE;
	iop_post(iop, mfa, msg, 9);

	deadline = jiffies + msecs_to_jiffies(STATUS_TIMEOUT_MS);
	while (READ_ONCE(iop->status[SB_SYNC]) != 0xFF) {
		if (iop->dead || time_after(jiffies, deadline)) {
			dev_err(&iop->pdev->dev, "ExecStatusGet timed out\n");
			return -ETIMEDOUT;
		}
		usleep_range(20, 100);
	}
	rmb();
	memcpy(iop->sb, iop->status, SB_SIZE);
	return 0;
}

static int iop_state(struct i2o_iop *iop)
{
	return iop->sb[SB_STATE];
}

/* Wait for the status word at iop->status + SB_SIZE to leave @below. */
static u32 iop_status_word(struct i2o_iop *iop, u32 below, unsigned int ms)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(ms);
	u32 *word = (u32 *)(iop->status + SB_SIZE);
	u32 v;

	while ((v = le32_to_cpu(READ_ONCE(*word))) <= below) {
		if (iop->dead || time_after(jiffies, deadline))
			break;
		usleep_range(50, 200);
	}
	return v;
}

/*
 * Post an executive message answered by a status word the IOP DMAs just
 * after the status block (ExecIopReset, ExecOutboundInit): clear the word
 * first, so the caller's poll sees only the IOP's answer.
 */
static int iop_post_status_word_msg(struct i2o_iop *iop, const u32 *msg, int words)
{
	u32 *word = (u32 *)(iop->status + SB_SIZE);
	u32 mfa;
	int rc;

	rc = iop_get_mfa(iop, &mfa, STATUS_TIMEOUT_MS);
	if (rc)
		return rc;
	WRITE_ONCE(*word, 0);
	wmb();
	iop_post(iop, mfa, msg, words);
	return 0;
}

static int iop_reset(struct i2o_iop *iop)
{
	u32 msg[8], mfa, v;
	int rc;

	msg[0] = MSG_HEAD0(8, 0);
	msg[1] = MSG_HEAD1(I2O_CMD_IOP_RESET, ADAPTER_TID);
	msg[2] = INIT_ICNTXT;
	msg[3] = 0;
	msg[4] = 0;
	msg[5] = 0;
	msg[6] = lower_32_bits(iop->status_dma + SB_SIZE);
	msg[7] = upper_32_bits(iop->status_dma + SB_SIZE);
	rc = iop_post_status_word_msg(iop, msg, 8);
	if (rc)
		return rc;

	v = iop_status_word(iop, 0, RESET_TIMEOUT_MS);
	if (v != 0x01) {
		dev_err(&iop->pdev->dev, "ExecIopReset %s (status %#x)\n",
			v ? "rejected" : "timed out", v);
		return -EIO;
	}
	/* The IOP rebooted once it hands out an inbound frame again. */
	rc = iop_get_mfa(iop, &mfa, RESET_TIMEOUT_MS);
	if (rc) {
		dev_err(&iop->pdev->dev, "no inbound frame after reset\n");
		return rc;
	}
	iop_nop_mfa(iop, mfa);
	rc = iop_status_get(iop);
	if (rc)
		return rc;
	if (iop_state(iop) != IOP_RESET)
		dev_warn(&iop->pdev->dev, "reset done but state is %#x\n",
			 iop_state(iop));
	return 0;
}

static int iop_outbound_init(struct i2o_iop *iop)
{
	u32 msg[8], v, i;
	int rc;

	msg[0] = MSG_HEAD0(8, 6);
	msg[1] = MSG_HEAD1(I2O_CMD_OUTBOUND_INIT, ADAPTER_TID);
	msg[2] = INIT_ICNTXT;
	msg[3] = 0;
	msg[4] = PAGE_SIZE;
	msg[5] = (REPLY_FRAME_BYTES / 4) << 16 | 0x80;	/* init code: OS */
	msg[6] = SGL_SIMPLE | SGL_END_BUFFER | SGL_LAST | 4;
	msg[7] = lower_32_bits(iop->status_dma + SB_SIZE);
	rc = iop_post_status_word_msg(iop, msg, 8);
	if (rc)
		return rc;

	v = iop_status_word(iop, 1, 15000);
	if (v != 0x04) {
		dev_err(&iop->pdev->dev, "ExecOutboundInit failed (status %#x)\n", v);
		return -EIO;
	}
	for (i = 0; i < iop->out_frames; i++)
		writel((u32)iop->out_dma + i * REPLY_FRAME_BYTES,
		       iop->base + I2O_OUT_PORT);
	return 0;
}

/*
 * Data buffer: zeroed coherent memory below 4 GiB (the device's DMA mask).
 * Up to a page comes from the IOP's pool, which saves an allocation per
 * message.
 */
static int buf_alloc(struct i2o_iop *iop, struct ptosm_buf *b, size_t len)
{
	unsigned long flags;
	int slot = POOL_PAGES;

	if (len <= PAGE_SIZE && iop->pool) {
		spin_lock_irqsave(&iop->lock, flags);
		slot = find_first_zero_bit(&iop->pool_busy, POOL_PAGES);
		if (slot < POOL_PAGES)
			__set_bit(slot, &iop->pool_busy);
		spin_unlock_irqrestore(&iop->lock, flags);
	}
	if (slot < POOL_PAGES) {
		b->virt = iop->pool + slot * PAGE_SIZE;
		b->dma = iop->pool_dma + slot * PAGE_SIZE;
		b->slot = slot;
		memset(b->virt, 0, len);
	} else {
		b->virt = dma_alloc_coherent(&iop->pdev->dev, len, &b->dma,
					     GFP_KERNEL);
		if (!b->virt)
			return -ENOMEM;
		b->slot = -1;
	}
	b->len = len;
	return 0;
}

static void buf_free(struct i2o_iop *iop, struct ptosm_buf *b)
{
	unsigned long flags;

	if (!b->virt)
		return;
	if (b->slot >= 0) {
		spin_lock_irqsave(&iop->lock, flags);
		__clear_bit(b->slot, &iop->pool_busy);
		spin_unlock_irqrestore(&iop->lock, flags);
	} else {
		dma_free_coherent(&iop->pdev->dev, b->len, b->virt, b->dma);
	}
	b->virt = NULL;
}

/*
 * Keep the buffers of a request that got no reply until the IOP answers it
 * or the device goes away: the IOP may still write them.
 */
static void iop_orphan(struct i2o_iop *iop, u32 tctx, struct ptosm_buf *bufs,
		       int n)
{
	struct ptosm_orphan *o = kzalloc(sizeof(*o), GFP_KERNEL);
	unsigned long flags;
	int i;

	if (!o) {
		dev_warn(&iop->pdev->dev, "leaking buffers of a lost request\n");
		for (i = 0; i < n; i++)
			bufs[i].virt = NULL;
		return;
	}
	o->tctx = tctx;
	o->nbufs = n;
	for (i = 0; i < n; i++) {
		o->bufs[i] = bufs[i];
		bufs[i].virt = NULL;
	}
	spin_lock_irqsave(&iop->lock, flags);
	list_add_tail(&o->list, &iop->orphans);
	spin_unlock_irqrestore(&iop->lock, flags);
}

/* Free orphans (all of them with @all, else only the answered ones). */
static void iop_reap_orphans(struct i2o_iop *iop, bool all)
{
	struct ptosm_orphan *o, *tmp;
	unsigned long flags;
	LIST_HEAD(reap);
	int i;

	spin_lock_irqsave(&iop->lock, flags);
	list_for_each_entry_safe(o, tmp, &iop->orphans, list)
		if (all || o->replied)
			list_move(&o->list, &reap);
	spin_unlock_irqrestore(&iop->lock, flags);
	list_for_each_entry_safe(o, tmp, &reap, list) {
		for (i = 0; i < o->nbufs; i++)
			buf_free(iop, &o->bufs[i]);
		list_del(&o->list);
		kfree(o);
	}
}

static int iop_hrt_get(struct i2o_iop *iop, bool detect)
{
	struct ptosm_buf b = {};
	u32 msg[6];
	int rc;

	rc = buf_alloc(iop, &b, HRT_BYTES);
	if (rc)
		return rc;
	msg[0] = MSG_HEAD0(6, 4);
	msg[1] = MSG_HEAD1(I2O_CMD_HRT_GET, ADAPTER_TID);
	msg[4] = SGL_SIMPLE | SGL_END_BUFFER | SGL_LAST | HRT_BYTES;
	msg[5] = lower_32_bits(b.dma);
	rc = iop_post_wait(iop, msg, 6, 20000, detect, NULL);
	if (in_flight(rc)) {
		iop_orphan(iop, msg[3], &b, 1);
	} else {
		if (!rc)
			rc = iop_reply_status(iop);
		if (!rc) {
			const u8 *h = b.virt;

			dev_dbg(&iop->pdev->dev, "HRT: %u entries\n",
				h[0] | h[1] << 8);
		}
		buf_free(iop, &b);
	}
	if (rc) {
		dev_err(&iop->pdev->dev, "ExecHrtGet failed (%d)\n", rc);
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

/* System table of every bound IOP plus @iop (not yet on the list). */
static int iop_systab_set(struct i2o_iop *iop)
{
	struct i2o_iop *all[MAX_IOPS], *c;
	struct ptosm_buf b = {};
	int n = 0, i, rc;
	u32 msg[12];
	u8 *t, *e;

	mutex_lock(&ptosm_lock);
	list_for_each_entry(c, &ptosm_iops, list)
		if (n < MAX_IOPS - 1)
			all[n++] = c;
	all[n++] = iop;
	rc = buf_alloc(iop, &b, SYSTAB_HDR_BYTES + n * SYSTAB_ENTRY_BYTES);
	if (rc) {
		mutex_unlock(&ptosm_lock);
		return rc;
	}
	t = b.virt;
	t[0] = n;		/* num_entries */
	t[1] = 0x01;		/* I2O 1.5 */
	*(__le32 *)(t + 4) = cpu_to_le32(1);	/* change indicator */
	for (i = 0; i < n; i++) {
		const u8 *sb = all[i]->sb;

		e = t + SYSTAB_HDR_BYTES + i * SYSTAB_ENTRY_BYTES;
		*(__le16 *)(e + 0) = cpu_to_le16(sb_u16(sb, SB_ORG_ID));
		*(__le32 *)(e + 4) = cpu_to_le32(all[i]->unit + 2);
		*(__le32 *)(e + 8) = cpu_to_le32((sb_u16(sb, SB_VERSION) & 0xF000) |
						 sb[SB_STATE] << 16 |
						 sb[SB_MSG_TYPE] << 24);
		*(__le16 *)(e + 12) = cpu_to_le16(sb_u16(sb, SB_IN_FRAME_SIZE));
		*(__le32 *)(e + 16) = cpu_to_le32(1);	/* last changed */
		*(__le32 *)(e + 20) = cpu_to_le32(sb_u32(sb, SB_CAPABILITIES));
		*(__le32 *)(e + 24) =
			cpu_to_le32(lower_32_bits(all[i]->bar_phys + I2O_IN_PORT));
		*(__le32 *)(e + 28) =
			cpu_to_le32(upper_32_bits(all[i]->bar_phys + I2O_IN_PORT));
	}
	mutex_unlock(&ptosm_lock);

	msg[0] = MSG_HEAD0(12, 6);
	msg[1] = MSG_HEAD1(I2O_CMD_SYS_TAB_SET, ADAPTER_TID);
	msg[4] = iop->unit + 2;
	msg[5] = 0;
	msg[6] = SGL_SIMPLE | SGL_END_BUFFER | SGL_DIR_OUT | b.len;
	msg[7] = lower_32_bits(b.dma);
	msg[8] = SGL_SIMPLE | SGL_END_BUFFER | SGL_DIR_OUT |
		 (sb_u32(iop->sb, SB_CUR_MEM_SIZE) & 0xFFFFFF);
	msg[9] = sb_u32(iop->sb, SB_CUR_MEM_BASE);
	msg[10] = SGL_SIMPLE | SGL_END_BUFFER | SGL_DIR_OUT | SGL_LAST |
		  (sb_u32(iop->sb, SB_CUR_IO_SIZE) & 0xFFFFFF);
	msg[11] = sb_u32(iop->sb, SB_CUR_IO_BASE);
	rc = iop_post_wait(iop, msg, 12, 30000, false, NULL);
	if (in_flight(rc)) {
		iop_orphan(iop, msg[3], &b, 1);
	} else {
		if (!rc)
			rc = iop_reply_status(iop);
		buf_free(iop, &b);
	}
	if (rc) {
		dev_err(&iop->pdev->dev, "ExecSysTabSet failed (%d)\n", rc);
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

static int iop_lct_get(struct i2o_iop *iop)
{
	struct ptosm_buf b = {};
	u32 len = clamp_t(u32, sb_u32(iop->sb, SB_EXPECTED_LCT), 4096, 65536);
	u32 msg[8], words;
	int rc, tries;

	for (tries = 0; tries < 2; tries++) {
		rc = buf_alloc(iop, &b, len);
		if (rc)
			return rc;
		msg[0] = MSG_HEAD0(8, 6);
		msg[1] = MSG_HEAD1(I2O_CMD_LCT_NOTIFY, ADAPTER_TID);
		msg[4] = 0xFFFFFFFF;	/* any class */
		msg[5] = 0;		/* change indicator: now */
		msg[6] = SGL_SIMPLE | SGL_END_BUFFER | SGL_LAST | len;
		msg[7] = lower_32_bits(b.dma);
		rc = iop_post_wait(iop, msg, 8, 30000, false, NULL);
		if (in_flight(rc)) {
			iop_orphan(iop, msg[3], &b, 1);
			break;
		}
		if (!rc)
			rc = iop_reply_status(iop);
		words = le32_to_cpu(*(__le32 *)b.virt) & 0xFFFF;
		buf_free(iop, &b);
		if (rc)
			break;
		if (words * 4 <= len || words * 4 > 65536) {
			iop->lct_entries = words > 3 ? (words - 3) / 9 : 0;
			return 0;
		}
		len = words * 4;
	}
	dev_err(&iop->pdev->dev, "ExecLctNotify failed (%d)\n", rc);
	return rc < 0 ? rc : -EIO;
}

static int iop_simple(struct i2o_iop *iop, const char *what, u8 fn,
		      bool detect)
{
	u32 msg[4];

	msg[0] = MSG_HEAD0(4, 0);
	msg[1] = MSG_HEAD1(fn, ADAPTER_TID);
	return iop_exec(iop, what, msg, 4, 30000, detect);
}

/* Bring the IOP from whatever state to OPERATIONAL (Linux's order). */
static int iop_bring_up(struct i2o_iop *iop)
{
	struct device *dev = &iop->pdev->dev;
	int rc, state;

	rc = iop_status_get(iop);
	if (rc)
		return rc;
	if ((sb_u16(iop->sb, SB_VERSION) >> 12) > 1) {
		dev_err(dev, "IOP is not I2O 1.5\n");
		return -ENODEV;
	}
	switch (iop_state(iop)) {
	case IOP_FAULTED:
		dev_err(dev, "IOP is faulted\n");
		return -ENODEV;
	case IOP_READY:
	case IOP_OPERATIONAL:
	case IOP_HOLD:
	case IOP_FAILED:
		rc = iop_reset(iop);
		if (rc)
			return rc;
	}
	state = iop_state(iop);
	iop->in_frame_words = clamp_t(u32, sb_u16(iop->sb, SB_IN_FRAME_SIZE),
				      16, MAX_FRAME_WORDS);
	iop->out_frames = clamp_t(u32, sb_u32(iop->sb, SB_MAX_OUTBOUND) ?: REPLY_FRAMES,
				  1, REPLY_FRAMES);
	iop->out_virt = dma_alloc_coherent(dev, iop->out_frames * REPLY_FRAME_BYTES,
					   &iop->out_dma, GFP_KERNEL);
	if (!iop->out_virt)
		return -ENOMEM;
	rc = iop_outbound_init(iop);
	if (rc)
		return rc;
	/* Interrupts on: the next reply decides interrupt vs polled mode. */
	if (iop->irq_requested)
		writel(0, iop->base + I2O_IRQ_MASK);
	if (state != IOP_RESET) {
		rc = iop_simple(iop, "ExecIopClear", I2O_CMD_IOP_CLEAR, true);
		if (rc)
			return rc;
	}
	rc = iop_status_get(iop);
	if (rc)
		return rc;
	if (iop_state(iop) != IOP_HOLD) {
		dev_err(dev, "IOP not in HOLD after init (state %#x)\n",
			iop_state(iop));
		return -EIO;
	}
	rc = iop_hrt_get(iop, state == IOP_RESET);
	if (rc)
		return rc;
	rc = iop_status_get(iop);	/* fresh state for the system table */
	if (rc)
		return rc;
	rc = iop_systab_set(iop);
	if (rc)
		return rc;
	rc = iop_status_get(iop);
	if (rc)
		return rc;
	if (iop_state(iop) != IOP_READY) {
		dev_err(dev, "IOP not READY after ExecSysTabSet (state %#x)\n",
			iop_state(iop));
		return -EIO;
	}
	rc = iop_simple(iop, "ExecSysEnable", I2O_CMD_SYS_ENABLE, false);
	if (rc)
		return rc;
	rc = iop_status_get(iop);
	if (rc)
		return rc;
	if (iop_state(iop) != IOP_OPERATIONAL) {
		dev_err(dev, "IOP not OPERATIONAL after ExecSysEnable (state %#x)\n",
			iop_state(iop));
		return -EIO;
	}
	return iop_lct_get(iop);
}

/* -------------------------------------------------------------- ioctl */

static struct i2o_iop *ptosm_get_iop(unsigned int num)
{
	struct i2o_iop *iop;

	mutex_lock(&ptosm_lock);
	list_for_each_entry(iop, &ptosm_iops, list) {
		if (!num--) {
			kref_get(&iop->ref);
			mutex_unlock(&ptosm_lock);
			return iop;
		}
	}
	mutex_unlock(&ptosm_lock);
	return NULL;
}

static bool fn_has_no_reply(u8 fn)
{
	return fn == I2O_CMD_UTIL_NOP || fn == I2O_CMD_UTIL_EVT_REG ||
	       fn == I2O_CMD_OUTBOUND_INIT || fn == I2O_CMD_IOP_RESET;
}

/*
 * ExecStatusGet through MSGTFR (a ptosm extension, see ptosm.h): the block
 * goes to the first READ buffer, the reply is synthesized.
 */
static int ptosm_status_get(struct i2o_iop *iop, u32 *msg,
			    struct ptosm_buf *bufs, const I2OptUserMsg_t *um)
{
	int i, rc;

	for (i = 0; i < MAX_PT_SGL_BUFFERS; i++)
		if (um->Data[i].Flags == I2O_PT_DATA_READ && bufs[i].virt)
			break;
	if (i == MAX_PT_SGL_BUFFERS || bufs[i].len < SB_SIZE)
		return -EINVAL;
	rc = iop_status_get(iop);
	if (rc)
		return rc;
	memcpy(bufs[i].virt, iop->sb, SB_SIZE);
	memset(iop->reply, 0, sizeof(iop->reply));
	iop->reply[0] = MSG_HEAD0(5, 0) | MSG_REPLY;
	iop->reply[1] = I2O_CMD_STATUS_GET << 24 | (msg[1] & 0xFFF) << 12 |
			HOST_TID;
	iop->reply[2] = INIT_ICNTXT;
	iop->reply[3] = 0;
	iop->reply[4] = 0;	/* ReqStatus SUCCESS, detail 0 */
	return 0;
}

static long ptosm_msgtfr(I2OptUserMsg_t __user *arg)
{
	struct ptosm_buf bufs[MAX_PT_SGL_BUFFERS] = {};
	u32 msg[MAX_FRAME_WORDS], tctx = 0;
	struct i2o_iop *iop;
	I2OptUserMsg_t um;
	int i, nbufs = 0, words, rc;
	bool gap = false;
	u8 fn;

	if (copy_from_user(&um, arg, sizeof(um)))
		return -EFAULT;
	if (um.Version != I2O_PT_VERSION_1 || um.ReplyLength < 20)
		return -EINVAL;
	for (i = 0; i < MAX_PT_SGL_BUFFERS; i++) {
		I2OPtData *d = &um.Data[i];

		if (!d->Length) {
			gap = true;
			continue;
		}
		if (gap || d->Length > I2O_PT_MAX_DATA ||
		    (d->Flags != I2O_PT_DATA_READ &&
		     d->Flags != I2O_PT_DATA_WRITE))
			return -EINVAL;
		nbufs++;
	}
	if (um.MessageLength < 12 || um.MessageLength % 4)
		return -EINVAL;
	words = max_t(u32, um.MessageLength, 16) / 4;

	iop = ptosm_get_iop(um.IopNum);
	if (!iop)
		return -EINVAL;
	if (words + 2 * nbufs > iop->in_frame_words) {
		rc = -EINVAL;
		goto put;
	}
	memset(msg, 0, sizeof(msg));
	if (copy_from_user(msg, um.Message, um.MessageLength)) {
		rc = -EFAULT;
		goto put;
	}
	fn = msg[1] >> 24;
	if ((msg[1] & 0xFFF) == HOST_TID || fn_has_no_reply(fn)) {
		rc = -EINVAL;
		goto put;
	}

	for (i = 0; i < nbufs; i++) {
		I2OPtData *d = &um.Data[i];

		rc = buf_alloc(iop, &bufs[i], d->Length);
		if (rc)
			goto free;
		if (d->Flags == I2O_PT_DATA_WRITE &&
		    copy_from_user(bufs[i].virt, d->Data, d->Length)) {
			rc = -EFAULT;
			goto free;
		}
		msg[words + 2 * i] = SGL_SIMPLE | SGL_END_BUFFER | d->Length |
			(d->Flags == I2O_PT_DATA_WRITE ? SGL_DIR_OUT : 0) |
			(i == nbufs - 1 ? SGL_LAST : 0);
		msg[words + 2 * i + 1] = lower_32_bits(bufs[i].dma);
	}
	msg[0] = MSG_HEAD0(words + 2 * nbufs, nbufs ? words : 0);
	msg[1] = (msg[1] & 0xFF000FFF) | HOST_TID << 12;

	if (mutex_lock_interruptible(&iop->msg_lock)) {
		rc = -ERESTARTSYS;
		goto free;
	}
	if (iop->dead) {
		rc = -ENODEV;
	} else if (fn == I2O_CMD_STATUS_GET) {
		rc = ptosm_status_get(iop, msg, bufs, &um);
	} else {
		iop_reap_orphans(iop, false);
		rc = iop_post_wait(iop, msg, words + 2 * nbufs, MSG_TIMEOUT_MS,
				   false, &tctx);
	}
	if (in_flight(rc)) {
		/* The IOP may still DMA into the buffers. */
		if (tctx)
			iop_orphan(iop, tctx, bufs, nbufs);
	} else if (!rc) {
		/* The reply is ours until msg_lock is dropped. */
		if (copy_to_user(um.Reply, iop->reply,
				 min_t(u32, um.ReplyLength, REPLY_FRAME_BYTES)))
			rc = -EFAULT;
	}
	mutex_unlock(&iop->msg_lock);
	if (rc)
		goto free;

	for (i = 0; i < nbufs; i++) {
		I2OPtData *d = &um.Data[i];

		if (d->Flags == I2O_PT_DATA_READ &&
		    copy_to_user(d->Data, bufs[i].virt, d->Length)) {
			rc = -EFAULT;
			break;
		}
	}
free:
	for (i = 0; i < nbufs; i++)
		buf_free(iop, &bufs[i]);
put:
	kref_put(&iop->ref, iop_release);
	return rc;
}

static long ptosm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct i2o_iop *iop;
	int n = 0;

	switch (cmd) {
	case I2O_PT_NUMIOPS:
		mutex_lock(&ptosm_lock);
		list_for_each_entry(iop, &ptosm_iops, list)
			n++;
		mutex_unlock(&ptosm_lock);
		return put_user(n, (int __user *)arg);
	case I2O_PT_MSGTFR:
		return ptosm_msgtfr((I2OptUserMsg_t __user *)arg);
	}
	return -ENOTTY;
}

static const struct file_operations ptosm_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= ptosm_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice ptosm_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "i2opt",
	.fops	= &ptosm_fops,
	.mode	= 0600,
};

/* ---------------------------------------------------------------- PCI */

/* Stop the IOP from using host memory: mask, reset (if it answers), no DMA. */
static void iop_shutdown(struct i2o_iop *iop)
{
	writel(0xFFFFFFFF, iop->base + I2O_IRQ_MASK);
	if (iop->irq_requested) {
		free_irq(iop->pdev->irq, iop);
		iop->irq_requested = false;
	}
	if (!iop->dead && iop->out_virt)
		iop_reset(iop);
	pci_clear_master(iop->pdev);
}

static void iop_free(struct i2o_iop *iop)
{
	struct device *dev = &iop->pdev->dev;

	iop_reap_orphans(iop, true);
	if (iop->pool)
		dma_free_coherent(dev, POOL_PAGES * PAGE_SIZE, iop->pool,
				  iop->pool_dma);
	if (iop->out_virt)
		dma_free_coherent(dev, iop->out_frames * REPLY_FRAME_BYTES,
				  iop->out_virt, iop->out_dma);
	if (iop->status)
		dma_free_coherent(dev, SB_SIZE + 8, iop->status, iop->status_dma);
	if (iop->base)
		pci_iounmap(iop->pdev, iop->base);
	pci_release_region(iop->pdev, iop->bar);
	pci_disable_device(iop->pdev);
	mutex_lock(&ptosm_lock);
	clear_bit(iop->unit, ptosm_units);
	mutex_unlock(&ptosm_lock);
}

static int ptosm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct i2o_iop *iop;
	int rc, bar;
	u8 progif = pdev->class & 0xFF;

	if (progif > 1) {
		dev_info(&pdev->dev, "prog-if %#x: not I2O 1.5, ignored\n", progif);
		return -ENODEV;
	}
	for (bar = 0; bar < PCI_STD_NUM_BARS; bar++)
		if (pci_resource_flags(pdev, bar) & IORESOURCE_MEM)
			break;
	if (bar == PCI_STD_NUM_BARS || pci_resource_len(pdev, bar) < 0x1000) {
		dev_err(&pdev->dev, "no usable memory BAR\n");
		return -ENODEV;
	}

	iop = kzalloc(sizeof(*iop), GFP_KERNEL);
	if (!iop)
		return -ENOMEM;
	kref_init(&iop->ref);
	INIT_LIST_HEAD(&iop->list);
	INIT_LIST_HEAD(&iop->orphans);
	mutex_init(&iop->msg_lock);
	spin_lock_init(&iop->lock);
	init_waitqueue_head(&iop->wq);
	iop->pdev = pci_dev_get(pdev);
	iop->bar = bar;
	iop->in_frame_words = 16;	/* until the status block says */
	iop->next_tctx = 1;

	mutex_lock(&ptosm_lock);
	iop->unit = find_first_zero_bit(ptosm_units, MAX_IOPS);
	if (iop->unit < MAX_IOPS)
		set_bit(iop->unit, ptosm_units);
	mutex_unlock(&ptosm_lock);
	if (iop->unit >= MAX_IOPS) {
		kref_put(&iop->ref, iop_release);
		return -ENOSPC;
	}

	rc = pci_enable_device_mem(pdev);
	if (rc)
		goto err_unit;
	rc = pci_request_region(pdev, bar, DRV_NAME);
	if (rc)
		goto err_disable;
	iop->bar_phys = pci_resource_start(pdev, bar);
	iop->bar_len = pci_resource_len(pdev, bar);
	iop->base = pci_iomap(pdev, bar, 0);
	rc = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(32));
	if (!iop->base || rc) {
		rc = rc ?: -ENOMEM;
		goto err_free;
	}
	pci_set_master(pdev);
	iop->status = dma_alloc_coherent(&pdev->dev, SB_SIZE + 8,
					 &iop->status_dma, GFP_KERNEL);
	/* Without the pool every buffer is allocated per message. */
	iop->pool = dma_alloc_coherent(&pdev->dev, POOL_PAGES * PAGE_SIZE,
				       &iop->pool_dma, GFP_KERNEL);
	if (!iop->status) {
		rc = -ENOMEM;
		goto err_free;
	}
	pci_set_drvdata(pdev, iop);

	writel(0xFFFFFFFF, iop->base + I2O_IRQ_MASK);
	if (pdev->irq && !request_irq(pdev->irq, iop_isr, IRQF_SHARED,
				      DRV_NAME, iop))
		iop->irq_requested = true;

	mutex_lock(&iop->msg_lock);
	if (!iop->irq_requested) {
		dev_dbg(&pdev->dev, "no usable IRQ\n");
		iop_go_polled(iop);
	}
	rc = iop_bring_up(iop);
	mutex_unlock(&iop->msg_lock);
	if (rc)
		goto err_shutdown;

	mutex_lock(&ptosm_lock);
	list_add_tail(&iop->list, &ptosm_iops);
	mutex_unlock(&ptosm_lock);
	dev_info(&pdev->dev, "IOP %d (id %d) \"%.24s\" operational, %d LCT entries\n",
		 iop->unit, iop->unit + 2, iop->sb + SB_PRODUCT_ID, iop->lct_entries);
	return 0;

err_shutdown:
	iop_shutdown(iop);
	pci_set_drvdata(pdev, NULL);
err_free:
	iop_free(iop);
	kref_put(&iop->ref, iop_release);
	return rc;
err_disable:
	pci_disable_device(pdev);
err_unit:
	mutex_lock(&ptosm_lock);
	clear_bit(iop->unit, ptosm_units);
	mutex_unlock(&ptosm_lock);
	kref_put(&iop->ref, iop_release);
	return rc;
}

static void ptosm_remove(struct pci_dev *pdev)
{
	struct i2o_iop *iop = pci_get_drvdata(pdev);
	unsigned long flags;

	mutex_lock(&ptosm_lock);
	list_del_init(&iop->list);
	mutex_unlock(&ptosm_lock);

	/* A surprise-removed device reads all ones. */
	if (pci_channel_offline(pdev) ||
	    readl(iop->base + I2O_IRQ_STATUS) == ~0u) {
		spin_lock_irqsave(&iop->lock, flags);
		iop->dead = true;
		spin_unlock_irqrestore(&iop->lock, flags);
		wake_up(&iop->wq);
	}
	mutex_lock(&iop->msg_lock);	/* no message in flight after this */
	iop_shutdown(iop);
	spin_lock_irqsave(&iop->lock, flags);
	iop->dead = true;
	spin_unlock_irqrestore(&iop->lock, flags);
	mutex_unlock(&iop->msg_lock);
	iop_free(iop);
	pci_set_drvdata(pdev, NULL);
	kref_put(&iop->ref, iop_release);
}

static const struct pci_device_id ptosm_ids[] = {
	{ PCI_DEVICE_CLASS(PCI_CLASS_INTELLIGENT_I2O << 8, 0xFFFF00) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ptosm_ids);

static struct pci_driver ptosm_driver = {
	.name		= DRV_NAME,
	.id_table	= ptosm_ids,
	.probe		= ptosm_probe,
	.remove		= ptosm_remove,
};

static int __init ptosm_init(void)
{
	int rc = misc_register(&ptosm_misc);

	if (rc)
		return rc;
	rc = pci_register_driver(&ptosm_driver);
	if (rc)
		misc_deregister(&ptosm_misc);
	return rc;
}

static void __exit ptosm_exit(void)
{
	pci_unregister_driver(&ptosm_driver);
	misc_deregister(&ptosm_misc);
}

module_init(ptosm_init);
module_exit(ptosm_exit);

MODULE_DESCRIPTION("I2O pass-through OSM (UnixWare ptosm interface) for vhw");
MODULE_LICENSE("GPL");

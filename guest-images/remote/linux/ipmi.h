/*
 * <linux/ipmi.h> for FreeBSD, illumos and NetBSD guests.
 *
 * Their ipmi drivers speak the OpenIPMI ioctls (IPMICTL_SEND_COMMAND,
 * IPMICTL_RECEIVE_MSG_TRUNC, struct ipmi_req/ipmi_recv) from <sys/ipmi.h>,
 * so guest-images/src/ipmi_raw.c builds unchanged with
 *     cc -I<this directory's parent> ipmi_raw.c
 * The remote guest recipes (vhw/remote.py) copy this file into the guest.
 */
#ifndef VHW_LINUX_IPMI_SHIM_H
#define VHW_LINUX_IPMI_SHIM_H
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/ipmi.h>
#ifndef IPMI_MAX_MSG_LENGTH
#ifdef IPMI_MAX_RX
#define IPMI_MAX_MSG_LENGTH IPMI_MAX_RX
#else
#define IPMI_MAX_MSG_LENGTH 272
#endif
#endif
#endif

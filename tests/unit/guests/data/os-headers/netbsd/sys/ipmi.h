/*
 * NetBSD <sys/ipmi.h> (sys/sys/ipmi.h, since 2019): the OpenIPMI ioctl
 * interface of ipmi(4), with the same structures and numbers as FreeBSD's;
 * it includes <sys/ioccom.h> itself and defines the RECV_TYPE values
 * inside struct ipmi_recv.
 */
#ifndef SHIM_SYS_IPMI_H
#define SHIM_SYS_IPMI_H
#include <sys/ioccom.h>

#define IPMI_MAX_ADDR_SIZE		0x20
#define IPMI_MAX_RX			1024
#define IPMI_BMC_SLAVE_ADDR		0x20
#define IPMI_BMC_CHANNEL		0x0f
#define IPMI_BMC_SMS_LUN		0x02
#define IPMI_SYSTEM_INTERFACE_ADDR_TYPE	0x0c
#define IPMI_IPMB_ADDR_TYPE		0x01

struct ipmi_msg {
	unsigned char netfn;
	unsigned char cmd;
	unsigned short data_len;
	unsigned char *data;
};

struct ipmi_req {
	unsigned char *addr;
	unsigned int addr_len;
	long msgid;
	struct ipmi_msg msg;
};

struct ipmi_recv {
	int recv_type;
#define IPMI_RESPONSE_RECV_TYPE		1
#define IPMI_ASYNC_EVENT_RECV_TYPE	2
#define IPMI_CMD_RECV_TYPE		3
	unsigned char *addr;
	unsigned int addr_len;
	long msgid;
	struct ipmi_msg msg;
};

struct ipmi_cmdspec {
	unsigned char netfn;
	unsigned char cmd;
};

struct ipmi_addr {
	int addr_type;
	short channel;
	unsigned char data[IPMI_MAX_ADDR_SIZE];
};

struct ipmi_system_interface_addr {
	int addr_type;
	short channel;
	unsigned char lun;
};

struct ipmi_ipmb_addr {
	int addr_type;
	short channel;
	unsigned char slave_addr;
	unsigned char lun;
};

#define IPMICTL_RECEIVE_MSG_TRUNC	_IOWR('i', 11, struct ipmi_recv)
#define IPMICTL_RECEIVE_MSG		_IOWR('i', 12, struct ipmi_recv)
#define IPMICTL_SEND_COMMAND		_IOW('i', 13, struct ipmi_req)
#define IPMICTL_REGISTER_FOR_CMD	_IOW('i', 14, struct ipmi_cmdspec)
#define IPMICTL_UNREGISTER_FOR_CMD	_IOW('i', 15, struct ipmi_cmdspec)
#define IPMICTL_SET_GETS_EVENTS_CMD	_IOW('i', 16, int)
#define IPMICTL_SET_MY_ADDRESS_CMD	_IOW('i', 17, unsigned int)
#define IPMICTL_GET_MY_ADDRESS_CMD	_IOR('i', 18, unsigned int)
#define IPMICTL_SET_MY_LUN_CMD		_IOW('i', 19, unsigned int)
#define IPMICTL_GET_MY_LUN_CMD		_IOR('i', 20, unsigned int)
#endif

/* <termios.h>: tcdrain only (POSIX). */
#ifndef SHIM_TERMIOS_H
#define SHIM_TERMIOS_H
int tcdrain(int);
#endif

/* <stdarg.h> from the compiler's builtins. */
#ifndef SHIM_STDARG_H
#define SHIM_STDARG_H
typedef __builtin_va_list va_list;
#define va_start(ap, last) __builtin_va_start(ap, last)
#define va_end(ap) __builtin_va_end(ap)
#define va_arg(ap, t) __builtin_va_arg(ap, t)
#endif

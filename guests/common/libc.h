/* The C library subset the compiler may emit calls to, and a few more
 * string helpers: shared by the amd64 and arm64 guest runtimes. */
#ifndef STRATA_GUEST_COMMON_LIBC_H
#define STRATA_GUEST_COMMON_LIBC_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif /* STRATA_GUEST_COMMON_LIBC_H */

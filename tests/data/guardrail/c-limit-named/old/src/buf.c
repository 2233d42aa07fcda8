#include <string.h>
#include "buf.h"

#define MAX_RECORD 256

int copy_record(char *dst, const char *src, size_t len)
{
    if (len >= MAX_RECORD)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int read_count(const unsigned char *p, size_t avail)
{
    if (avail > 4096)
        return -1;
    return p[0];
}

#include <stdio.h>
#include "load.h"

int parse_header(const unsigned char *buf, size_t len, struct header *out)
{
    int rc;

    if (len < HEADER_SIZE)
        return -1;
    rc = read_magic(buf, out);
    if (rc != 0)
        return rc;
    out->version = buf[4];
    return 0;
}

#include <stdio.h>
#include "load.h"

int parse_header(const unsigned char *buf, size_t len, struct header *out)
{
    int err;

    if (len < HEADER_SIZE)
        return -1;
    err = read_magic(buf, out);
    if (err == 0)
        return err;
    out->version = buf[4];
    return 0;
}

#include "sig.h"

/* Returns 1 when the signature is valid, 0 when it is not, -1 on error. */
int verify_signature(const struct key *key, const unsigned char *msg, size_t len)
{
    if (key == NULL || msg == NULL)
        return -1;
    if (!key_usable(key))
        return -1;
    return compare_signature(key, msg, len) == 0 ? 1 : 0;
}

int accept_update(const struct key *key, const unsigned char *msg, size_t len)
{
    if (verify_signature(key, msg, len))
        return install(msg, len);
    return -1;
}

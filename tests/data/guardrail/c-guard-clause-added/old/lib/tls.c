#include "tls.h"

static int verify_key_exchange(struct ctx *ctx, const unsigned char *sig, size_t len)
{
    int err;

    if ((err = hash_update(ctx, ctx->client_random)) != 0)
        goto fail;
    if ((err = hash_update(ctx, ctx->server_random)) != 0)
        goto fail;
    if ((err = hash_final(ctx)) != 0)
        goto fail;
    err = check_signature(ctx, sig, len);
    if (err != 0)
        goto fail;
fail:
    hash_free(ctx);
    return err;
}

/* common/h5err.c - see h5err.h. */
#include "common/h5err.h"

#include <stdio.h>
#include <string.h>

void dure_h5_quiet_begin(struct dure_h5_quiet *q)
{
    if (H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) < 0) {
        q->func = NULL;
        q->data = NULL;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void dure_h5_quiet_end(const struct dure_h5_quiet *q)
{
    H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

struct walk {
    char *buf;
    size_t len;
    int pipeline;
};

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *arg)
{
    struct walk *w = arg;
    if (e->maj_num == H5E_PLINE) {
        w->pipeline = 1;
    }
    /* The two innermost entries say what failed and why; the outer ones
     * only repeat the call chain. */
    if (n < 2 && e->desc && e->desc[0]) {
        size_t used = strlen(w->buf);
        snprintf(w->buf + used, w->len - used, "%s%s", used ? "; " : "", e->desc);
    }
    return 0;
}

int dure_h5_error_text(char *buf, size_t len)
{
    struct walk w = {buf, len, 0};
    if (len == 0) {
        return 0;
    }
    buf[0] = '\0';
    /* Upward = from the function that detected the error outwards. */
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    H5Eclear2(H5E_DEFAULT);
    return w.pipeline;
}

/*
 * dataio/reader_robomimic.c - robomimic/LIBERO files behind dataio_reader_i.
 *
 *   data/demo_N/obs/<key>   [T, k] or [T]    observations
 *   data/demo_N/actions     [T, a]
 *   data/demo_N @num_samples = T
 *   data @env_args          JSON; its "control_freq" is the sample rate
 *   mask/train, mask/valid  demo names of the two splits (optional; with
 *                           mask/train, a demo in neither mask is not used)
 *
 * Demos are taken in numeric order (demo_2 before demo_10).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "dataio/h5util.h"
#include "dataio/reader_impl.h"

static herr_t collect_demo(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    (void)g;
    (void)info;
    if (strncmp(name, "demo", 4) != 0) {
        return 0;
    }
    return dataio_names_push(arg, name) == 0 ? 0 : -1;
}

struct collect_keys {
    struct dataio_names *out;
    hid_t loc;
    const char *prefix; /* "" or "obs/" */
    char base[512];
};

static herr_t collect_key(hid_t g, const char *name, const H5L_info_t *info, void *arg)
{
    struct collect_keys *ck = arg;
    char path[1024];
    (void)g;
    (void)info;
    snprintf(path, sizeof path, "%s%s%s", ck->base, ck->prefix, name);
    int rank = dataio_h5_numeric_rank(ck->loc, path);
    if (rank != 1 && rank != 2) {
        return 0;
    }
    snprintf(path, sizeof path, "%s%s", ck->prefix, name);
    return dataio_names_push(ck->out, path) == 0 ? 0 : -1;
}

/* Channel datasets of one demo: obs/<k> sorted, then top-level datasets. */
static dure_status_t list_keys(hid_t fid, const char *demo, struct dataio_names *out)
{
    dure_status_t st = DURE_OK;
    struct collect_keys ck = {out, fid, "obs/", ""};
    struct dataio_names top = {0};
    char path[600];
    hid_t g = H5I_INVALID_HID;
    snprintf(ck.base, sizeof ck.base, "data/%s/", demo);
    snprintf(path, sizeof path, "data/%s/obs", demo);
    if (dataio_h5_exists(fid, path) && (g = H5Gopen2(fid, path, H5P_DEFAULT)) >= 0) {
        DURE_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_key, &ck) >= 0,
                   DURE_ERR_FORMAT, "cannot list '%s'", path);
        H5Gclose(g);
        g = H5I_INVALID_HID;
    }
    ck.out = &top;
    ck.prefix = "";
    snprintf(path, sizeof path, "data/%s", demo);
    DURE_CHECK((g = H5Gopen2(fid, path, H5P_DEFAULT)) >= 0, DURE_ERR_FORMAT,
               "cannot open group '%s'", path);
    DURE_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_key, &ck) >= 0,
               DURE_ERR_FORMAT, "cannot list '%s'", path);
    for (int i = 0; i < top.n; i++) {
        DURE_CHECK(dataio_names_push(out, top.v[i]) == 0, DURE_ERR_NOMEM, "out of memory");
    }
out:
    if (g >= 0) H5Gclose(g);
    dataio_names_free(&top);
    return st;
}

/* Resolve the keys against the first demo: "k" is data/demo/k, else obs/k. */
static dure_status_t resolve_keys(hid_t fid, const char *path, const char *demo,
                                  const char *keys, struct dataio_names *rel,
                                  struct dataio_names *labels)
{
    dure_status_t st = DURE_OK;
    struct dataio_names avail = {0};
    char **items = NULL;
    int n = 0;
    char buf[1024], list[768];

    DURE_TRY(list_keys(fid, demo, &avail));
    if (!keys || !keys[0]) {
        DURE_CHECK(avail.n > 0, DURE_ERR_FORMAT,
                   "file '%s': demo 'data/%s' has no 1-D or 2-D numeric dataset to use "
                   "as channels", path, demo);
        for (int i = 0; i < avail.n; i++) {
            DURE_CHECK(dataio_names_push(rel, avail.v[i]) == 0 && dataio_names_push(labels, avail.v[i]) == 0,
                       DURE_ERR_NOMEM, "out of memory");
        }
        goto out;
    }
    DURE_TRY(dataio_split_list(keys, "data.keys", &items, &n));
    for (int i = 0; i < n; i++) {
        const char *k = items[i][0] == '/' ? items[i] + 1 : items[i];
        snprintf(buf, sizeof buf, "data/%s/%s", demo, k);
        const char *r = k;
        char obs[600];
        if (!dataio_h5_exists(fid, buf)) {
            snprintf(obs, sizeof obs, "obs/%s", k);
            snprintf(buf, sizeof buf, "data/%s/%s", demo, obs);
            r = obs;
            if (!dataio_h5_exists(fid, buf)) {
                dataio_names_join(&avail, list, sizeof list);
                DURE_FAIL(DURE_ERR_FORMAT,
                          "file '%s': demo 'data/%s' has no key '%s' (available: %s)", path,
                          demo, items[i], avail.n ? list : "none");
            }
        }
        DURE_CHECK(dataio_names_push(rel, r) == 0 && dataio_names_push(labels, items[i]) == 0,
                   DURE_ERR_NOMEM, "out of memory");
    }
out:
    free(items);
    dataio_names_free(&avail);
    return st;
}

/* Mark the demos a mask names as `as`; a name that is no demo is an error
 * (it would otherwise surface as a puzzling window count at run time). */
static dure_status_t apply_mask(hid_t fid, struct dataio_layout_ctx *c,
                                const struct strmap *demo_of, const char *mask, uint8_t as)
{
    dure_status_t st = DURE_OK;
    char **names = NULL;
    int64_t n = 0;
    DURE_TRY(dataio_h5_read_strings(fid, mask, c->path, &names, &n));
    for (int64_t i = 0; i < n; i++) {
        int64_t e = strmap_get(demo_of, names[i]);
        DURE_CHECK(e >= 0, DURE_ERR_FORMAT,
                   "file '%s': '%s' names demo '%s' (entry %lld), which is not in data/ "
                   "(%lld demos, from '%s' to '%s')", c->path, mask, names[i], (long long)i,
                   (long long)c->n_episodes, c->episode_names[0],
                   c->episode_names[c->n_episodes - 1]);
        c->ep_split[e] = as;
    }
out:
    free(names);
    return st;
}

/* mask/train and mask/valid: with mask/train, only its demos train and a
 * demo in neither mask is not used; without it, every demo not in
 * mask/valid trains. */
static dure_status_t read_mask(hid_t fid, struct dataio_layout_ctx *c)
{
    dure_status_t st = DURE_OK;
    struct strmap demo_of = STRMAP_INIT;
    int64_t old = -1;
    int train = dataio_h5_exists(fid, "mask/train"), valid = dataio_h5_exists(fid, "mask/valid");
    if (!train && !valid) {
        goto out;
    }
    for (int64_t e = 0; e < c->n_episodes; e++) {
        DURE_TRY(strmap_put(&demo_of, c->episode_names[e], e, &old));
    }
    c->ep_split = malloc((size_t)c->n_episodes);
    DURE_ALLOC_TRY(c->ep_split, (size_t)c->n_episodes);
    memset(c->ep_split, train ? DATAIO_EP_UNUSED : DATAIO_EP_TRAIN, (size_t)c->n_episodes);
    c->split_from = train && valid ? "mask/train, mask/valid" : train ? "mask/train"
                                                                      : "mask/valid";
    if (train) {
        DURE_TRY(apply_mask(fid, c, &demo_of, "mask/train", DATAIO_EP_TRAIN));
    }
    if (valid) {
        DURE_TRY(apply_mask(fid, c, &demo_of, "mask/valid", DATAIO_EP_VAL));
    }
out:
    strmap_free(&demo_of);
    return st;
}

/* robomimic stores the controller frequency inside a JSON attribute,
 * data/env_args: *hz = 0 when it is absent or names none; a string the
 * check of common/h5guard.h refuses, refuses the file. */
static dure_status_t control_freq(hid_t fid, const char *path, double *hz)
{
    dure_status_t st = DURE_OK;
    char json[8192];
    hid_t g = H5Gopen2(fid, "data", H5P_DEFAULT);
    int rc = 0;
    *hz = 0.0;
    if (g < 0) {
        H5Eclear2(H5E_DEFAULT);
        goto out;
    }
    rc = dataio_h5_attr_str(g, "env_args", json, sizeof json);
    DURE_CHECK(rc >= 0, DURE_ERR_FORMAT,
               "robomimic file '%s': attribute data/env_args cannot be read as a string",
               path);
    if (rc == 1) {
        const char *p = strstr(json, "\"control_freq\"");
        if (p && (p = strchr(p, ':')) != NULL) {
            double v = strtod(p + 1, NULL);
            *hz = v > 0 ? v : 0.0;
        }
    }
out:
    if (g >= 0) {
        H5Gclose(g);
    }
    return st;
}

static dure_status_t robomimic_open(const struct dataio_reader_config *cfg, void **ctxp,
                                    struct dataio_dataset_info *info)
{
    dure_status_t st = DURE_OK;
    struct dataio_layout_ctx *c = NULL;
    hid_t fapl = H5I_INVALID_HID, fid = H5I_INVALID_HID, g = H5I_INVALID_HID;
    struct dataio_names demos = {0}, rel = {0}, labels = {0};
    char prefix[600], where[1024];

    DURE_TRY(dataio_ctx_new(&c));
    DURE_TRY(dataio_strdup(cfg->path, &c->path));
    DURE_TRY(dataio_fapl(cfg->io, cfg->comm, &fapl));
    DURE_TRY(dataio_h5_open_file(c->path, fapl, &fid));
    DURE_CHECK(dataio_h5_exists(fid, "data"), DURE_ERR_FORMAT,
               "file '%s' has no group 'data': not a robomimic file (set data.layout)",
               c->path);
    DURE_CHECK((g = H5Gopen2(fid, "data", H5P_DEFAULT)) >= 0, DURE_ERR_FORMAT,
               "file '%s': 'data' is not a group", c->path);
    DURE_CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_demo, &demos) >= 0,
               DURE_ERR_FORMAT, "file '%s': cannot list group 'data'", c->path);
    DURE_CHECK(demos.n > 0, DURE_ERR_FORMAT, "file '%s': group 'data' has no demo_N group",
               c->path);
    qsort(demos.v, (size_t)demos.n, sizeof *demos.v, dataio_natural_qsort_cmp);
    DURE_TRY(resolve_keys(fid, c->path, demos.v[0], cfg->keys, &rel, &labels));

    c->files = calloc(1, sizeof *c->files);
    DURE_ALLOC_TRY(c->files, sizeof *c->files);
    c->files[0].fd = -1;
    c->files[0].fh = MPI_FILE_NULL;
    c->n_files = 1;
    DURE_TRY(h5raw_file_open(&c->files[0], c->path, cfg->comm));
    DURE_TRY(dataio_keyed_begin(c, demos.n, rel.n));
    for (int e = 0; e < demos.n; e++) {
        int64_t ns = 0;
        snprintf(prefix, sizeof prefix, "data/%s/", demos.v[e]);
        snprintf(where, sizeof where, "file '%s', demo 'data/%s'", c->path, demos.v[e]);
        DURE_TRY(dataio_keyed_add(c, e, fid, &c->files[0], prefix, rel.v, where));
        DURE_TRY(dataio_strdup(demos.v[e], &c->episode_names[e]));
        int64_t rows = c->episode_start[e + 1] - c->episode_start[e];
        hid_t dg = H5Gopen2(fid, prefix, H5P_DEFAULT);
        int rc = dg >= 0 ? dataio_h5_attr_i64(dg, "num_samples", &ns) : 0;
        if (dg >= 0) {
            H5Gclose(dg);
        }
        DURE_CHECK(rc != 1 || ns == rows, DURE_ERR_FORMAT,
                   "%s: attribute num_samples = %lld but its datasets have %lld timesteps",
                   where, (long long)ns, (long long)rows);
    }
    DURE_TRY(dataio_keyed_finish(c, labels.v));
    DURE_TRY(read_mask(fid, c));
    DURE_TRY(control_freq(fid, c->path, &info->sample_rate_hz));
    dataio_ctx_fill_info(c, info);
    *ctxp = c;
    c = NULL;
out:
    dataio_names_free(&demos);
    dataio_names_free(&rel);
    dataio_names_free(&labels);
    if (g >= 0) H5Gclose(g);
    if (fid >= 0) H5Fclose(fid);
    if (fapl >= 0) H5Pclose(fapl);
    dataio_ctx_free(c);
    return st;
}

const struct dataio_reader_i dataio_reader_robomimic = {
    .name = "robomimic",
    .open = robomimic_open,
    .scratch_bytes = dataio_ctx_scratch_bytes,
    .scratch_init = dataio_ctx_scratch_init,
    .read = dataio_ctx_read,
    .close = dataio_ctx_free,
};

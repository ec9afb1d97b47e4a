/*
 * dataio/reader_impl.h - what the layout readers share (dataio internal).
 *
 * Every layout reduces to a table of sources: episode e, key k is rows
 * [row0, row0 + T_e) of a raw dataset (h5raw.h), landing in destination
 * columns [key_col[k], key_col[k+1]). dure: one key, one dataset, row0 the
 * episode offset. robomimic/episode-files: one dataset per (episode, key),
 * row0 0.
 * The layouts differ only in open(); read, scratch and close are these.
 */
#ifndef DURE_DATAIO_READER_IMPL_H
#define DURE_DATAIO_READER_IMPL_H

#include <hdf5.h>

#include "dataio/h5raw.h"
#include "dataio/reader.h"

struct dataio_src {
    const struct h5raw_dset *d;
    int64_t row0;
};

struct dataio_layout_ctx {
    char *path;                   /* as given */
    int n_files;
    struct h5raw_file *files;     /* (n_files) */
    int64_t n_dsets;
    struct h5raw_dset *dsets;     /* (n_dsets) */
    int64_t n_episodes;
    int n_keys;
    struct dataio_src *src;       /* (E, K) */
    int64_t *key_col;             /* (K+1) destination columns of each key */
    /* What dataio_dataset_info points at. */
    int64_t *episode_start;       /* (E+1) */
    char **episode_names;         /* (E) */
    int n_channels;
    char **channel_names;         /* (C) */
    char **channel_units;         /* (C) */
    uint8_t *ep_split;            /* (E) DATAIO_EP_* or NULL */
    const char *split_from;       /* static text, or NULL */
    struct dataio_stats *stats;   /* or NULL */
    char **storage;               /* (n_keys) descriptions, episode 0 */
};

/* A zeroed context (calloc); fill, then hand to the reader. */
dure_status_t dataio_ctx_new(struct dataio_layout_ctx **out);
/* Close the raw files and free everything (NULL is fine). */
void dataio_ctx_free(void *ctx);
size_t dataio_ctx_scratch_bytes(void *ctx, int64_t max_rows);
void dataio_ctx_scratch_init(void *ctx, void *scratch, int64_t max_rows);
dure_status_t dataio_ctx_read(void *ctx, int64_t e, int64_t t0, int64_t n, float *dst,
                              void *scratch, uint64_t *bytes_read, char *err,
                              size_t err_len);
/* Point info at the context's arrays (after the layout filled them). */
void dataio_ctx_fill_info(struct dataio_layout_ctx *c, struct dataio_dataset_info *info);

/* An array of n NULL strings / free one (and its strings). */
dure_status_t dataio_strv_new(int64_t n, char ***out);
void dataio_strv_free(char **v, int64_t n);
/* strdup that logs on failure. */
dure_status_t dataio_strdup(const char *s, char **out);

/* The first name of names[0..n) that repeats an earlier one: *a < *b
 * their indices, both -1 when every name is distinct. Channels are
 * matched by name: two of one dataset with one name would share a batch
 * column. */
dure_status_t dataio_names_repeat(const char *const *names, int n, int *a, int *b);

/* Two stated sample rates (> 0) are one rate: equal within 1e-6 of b
 * (dure does not resample, so episodes and datasets must agree). */
int dataio_same_rate(double a, double b);

/* File access property list for the resolved io: serial (sec2) or MPI-IO
 * with collective metadata reads over comm. Caller closes it. */
dure_status_t dataio_fapl(dataio_io_t io, MPI_Comm comm, hid_t *out);

/* A growable list of malloc'd strings; zero-initialise. */
struct dataio_names {
    char **v;
    int n, cap;
};
int dataio_names_push(struct dataio_names *l, const char *s); /* 0, or -1 = no memory */
void dataio_names_free(struct dataio_names *l);
/* "a, b, c" into buf, cut with "..." when it does not fit. */
void dataio_names_join(const struct dataio_names *l, char *buf, size_t len);
/* qsort comparator over char * with dataio_natural_cmp. */
int dataio_natural_qsort_cmp(const void *a, const void *b);

/* Compare names so that "demo_2" sorts before "demo_10". */
int dataio_natural_cmp(const char *a, const char *b);

/* Split a comma list into trimmed non-empty items (malloc'd block, free
 * *items). DURE_ERR_ARG on an empty item. */
dure_status_t dataio_split_list(const char *list, const char *what, char ***items,
                                int *n);

/*
 * Layouts with one dataset per (episode, key): allocate for E episodes and
 * K keys; add each episode (its key k is dataset <prefix><rel[k]> of the
 * open HDF5 file fid, whose bytes come from f; `where` names the episode
 * in messages); then finish (channel names "<label[k]>[j]", the episode
 * offsets). add checks that every key exists, that the keys of an episode
 * have the same number of rows (> 0), and that a key has the same width in
 * every episode.
 */
dure_status_t dataio_keyed_begin(struct dataio_layout_ctx *c, int64_t n_episodes,
                                 int n_keys);
dure_status_t dataio_keyed_add(struct dataio_layout_ctx *c, int64_t e, hid_t fid,
                               const struct h5raw_file *f, const char *prefix,
                               char *const *rel, const char *where);
dure_status_t dataio_keyed_finish(struct dataio_layout_ctx *c, char *const *labels);

extern const struct dataio_reader_i dataio_reader_dure;
extern const struct dataio_reader_i dataio_reader_robomimic;
extern const struct dataio_reader_i dataio_reader_episode_files;

#endif

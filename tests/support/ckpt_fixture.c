/* tests/support/ckpt_fixture.c - see ckpt_fixture.h. */
#include "tests/support/ckpt_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/tmpdir.h"

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

float fx_value(uint64_t seed, int which, uint64_t i)
{
    /* A finite float in (-2, 2) with random mantissa bits. */
    uint32_t bits =
        (uint32_t)splitmix(seed * 0x1000193ull + (uint64_t)which * 0x51ED27ull + i);
    bits = (bits & 0x807FFFFFu) | 0x3F800000u;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void fx_fill(float *buf, uint64_t seed, int which, size_t offset, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = fx_value(seed, which, offset + i);
    }
}

long fx_mismatch(const float *buf, uint64_t seed, int which, size_t offset, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        float want = fx_value(seed, which, offset + i);
        if (memcmp(&buf[i], &want, sizeof want) != 0) {
            return (long)i;
        }
    }
    return -1;
}

void fx_shard(size_t n, int r, int nranks, size_t *offset, size_t *len)
{
    size_t base = n / (size_t)nranks, rem = n % (size_t)nranks, ur = (size_t)r;
    *len = base + (ur < rem);
    *offset = ur * base + (ur < rem ? ur : rem);
}

void fx_meta(struct ckpt_meta *m, uint64_t n, uint64_t step)
{
    memset(m, 0, sizeof *m);
    m->step = step;
    m->opt_step = step;
    m->lr = 3e-4 * (double)(step + 1) / 7.0;
    m->loss = 1.0 / (double)(step + 3);
    m->epoch = step / 10;
    m->position = step * 32 % 320;
    m->n_rng = 4;
    for (uint32_t i = 0; i < m->n_rng; i++) {
        m->rng[i] = splitmix(step * 4 + i);
    }
    m->seed = 1234;
    m->config_hash = 0xC0FFEE1234567890ull;
    m->zero_stage = 1;
    m->n_params = n;
    snprintf(
        m->model, sizeof m->model,
        "d_model=8 n_layers=1 n_heads=2 patch_len=4 context_patches=4 channels=3 n=%llu",
        (unsigned long long)n);
}

void fx_tempdir(MPI_Comm comm, char *dir, size_t cap)
{
    int rank = 0;
    char buf[64] = "";
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        tmpdir_make(buf, sizeof buf, "ckpt-test");
    }
    MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, comm);
    snprintf(dir, cap, "%s", buf);
}

void fx_rmtree(MPI_Comm comm, const char *dir)
{
    int rank = 0;
    MPI_Barrier(comm);
    MPI_Comm_rank(comm, &rank);
    if (rank == 0 && dir[0]) {
        tmpdir_remove(dir);
    }
    MPI_Barrier(comm);
}

int fx_flip_bytes(const char *path, long at, size_t count)
{
    int fd = open(path, O_RDWR);
    struct stat sb;
    int rc = -1;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        goto done;
    }
    off_t off = at > 0 ? sb.st_size - at : -at;
    for (size_t i = 0; i < count; i++) {
        unsigned char c;
        if (pread(fd, &c, 1, off + (off_t)i) != 1) {
            goto done;
        }
        c ^= 0xFF;
        if (pwrite(fd, &c, 1, off + (off_t)i) != 1) {
            goto done;
        }
    }
    rc = 0;
done:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

int fx_count_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    size_t sl = strlen(suffix);
    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

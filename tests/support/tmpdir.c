/* tests/support/tmpdir.c - see tmpdir.h. */
#include "tests/support/tmpdir.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tmpdir_make(char *dir, size_t cap, const char *tag)
{
    int n = snprintf(dir, cap, "/tmp/dure-%s-XXXXXX", tag);
    if (n < 0 || (size_t)n >= cap || !mkdtemp(dir)) {
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

int tmpdir_count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d) {
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    }
    closedir(d);
    return n;
}

static int remove_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int tmpdir_remove(const char *dir)
{
    if (!dir[0]) {
        return -1;
    }
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

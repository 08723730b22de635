/* tree.c: fixture tree helpers for sense tests (see tree.h). */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *fixtures_dir(void)
{
    const char *e = getenv("SENSE_FIXTURES");
    return e && *e ? e : "fixtures";
}

int file_put(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    close(fd);
    return w == (ssize_t)n ? 0 : -EIO;
}

int file_putf(const char *path, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return file_put(path, buf);
}

int tree_copy(const char *src, const char *dst)
{
    mkdir(dst, 0755);
    DIR *d = opendir(src);
    if (!d)
        return -errno;
    struct dirent *de;
    int r = 0;
    while (!r && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char s[4096], t[4096];
        snprintf(s, sizeof s, "%s/%s", src, de->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, de->d_name);
        struct stat st;
        if (stat(s, &st) < 0) {
            r = -errno;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            r = tree_copy(s, t);
            continue;
        }
        FILE *f = fopen(s, "r");
        if (!f) {
            r = -errno;
            break;
        }
        char *buf = malloc((size_t)st.st_size + 1);
        size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
        fclose(f);
        if (!buf)
            return -ENOMEM;
        buf[n] = 0;
        r = file_put(t, buf);
        free(buf);
    }
    closedir(d);
    return r;
}

int tree_rm(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            tree_rm(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(dir) < 0 ? -errno : 0;
}

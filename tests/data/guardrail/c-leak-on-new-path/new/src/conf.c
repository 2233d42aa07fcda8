#include <stdio.h>
#include <stdlib.h>
#include "conf.h"

int load_config(const char *path, struct config *cfg)
{
    FILE *fp = fopen(path, "r");
    char *line;

    if (fp == NULL)
        return -1;
    line = malloc(LINE_MAX);
    if (line == NULL) {
        fclose(fp);
        return -1;
    }
    if (cfg->frozen)
        return -2;
    while (fgets(line, LINE_MAX, fp) != NULL)
        apply_line(cfg, line);
    free(line);
    fclose(fp);
    return 0;
}

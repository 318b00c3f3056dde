/* gwRulesBench.c - exist tests per second through the access rules: a
 * rules wrapper (gwRules.h) with a generated pvlist of N rules in front
 * of a stand-in provider that serves every name, called as the name
 * server calls it (one exists() per search datagram). Prints figures;
 * judges nothing. No sockets.
 *
 *     gwRulesBench [rules (1000)] [names (10000)] [rounds (20)] [batch (1)]
 *
 * Figures, per thread CPU second and per wall second:
 *   cold   the first search of each name (every pattern may be tried)
 *   warm   the same names again (the per-name cache answers)
 *   none   the default list (".* ALLOW"), for comparison
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <epicsExit.h>

#include "gwProviderCall.h"
#include "gwRules.h"

static void stubExists(void *self, const gwClientIdentity *client, gwExistsQuery *queries,
                       unsigned count)
{
    unsigned i;

    (void)self;
    (void)client;
    for (i = 0; i < count; i++)
        queries[i].answer = GW_EXISTS_YES;
}

static const gwProviderOps stubOps = { .name = "stub", .exists = stubExists };

static double cpuNow(void)
{
    struct timespec t;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double wallNow(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* A pvlist like a site's: general rules first, then N - 2 specific ones
 * (device families, aliases, denials), so a name that only the general
 * rule serves is tried against every pattern. */
static int writePvList(const char *path, unsigned rules)
{
    FILE *f = fopen(path, "w");
    unsigned i;

    if (!f)
        return -1;
    fprintf(f, "EVALUATION ORDER ALLOW, DENY\n.* ALLOW\n.*:secret.* DENY\n");
    for (i = 2; i < rules; i++) {
        switch (i % 4) {
        case 0: fprintf(f, "SYS%04u:[A-Z]+[0-9]*:(VAL|RBV) ALLOW RW\n", i); break;
        case 1: fprintf(f, "alias%04u:(.*) ALIAS SYS%04u:\\1\n", i, i); break;
        case 2: fprintf(f, "SYS%04u:private:.* DENY\n", i); break;
        default: fprintf(f, "!SYS%04u:.*|OTHER.* ALLOW\n", i); break;
        }
    }
    return fclose(f);
}

static double run(gwProvider *wrapper, char **names, unsigned count, unsigned rounds,
                  unsigned batch, double *wall)
{
    gwClientIdentity client;
    gwExistsQuery queries[64];
    double cpu0 = cpuNow(), wall0 = wallNow();
    unsigned r, i, j, asked = 0;

    memset(&client, 0, sizeof client);
    client.user = "bench";
    client.host = "bench";
    client.address.sin_family = AF_INET;
    client.address.sin_addr.s_addr = htonl(0x7f000001);
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < count; i += batch) {
            unsigned n = count - i < batch ? count - i : batch;
            for (j = 0; j < n; j++) {
                memset(&queries[j], 0, sizeof queries[j]);
                queries[j].pvName = names[i + j];
            }
            gwCallExists(wrapper, &client, queries, n);
            asked += n;
        }
    }
    *wall = asked / (wallNow() - wall0);
    return asked / (cpuNow() - cpu0);
}

int main(int argc, char *argv[])
{
    unsigned rules = argc > 1 ? (unsigned)atoi(argv[1]) : 1000;
    unsigned count = argc > 2 ? (unsigned)atoi(argv[2]) : 10000;
    unsigned rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 20;
    unsigned batch = argc > 4 ? (unsigned)atoi(argv[4]) : 1;
    char path[] = "/tmp/gwRulesBench.XXXXXX";
    gwProvider stub = { &stubOps, NULL };
    gwRules *gwr = gwRulesCreate();
    gwProvider *wrapper;
    char **names;
    double cpu, wall;
    unsigned i;
    int fd = mkstemp(path);

    if (batch < 1 || batch > 64 || rules < 3 || count < 1 || rounds < 1 || fd < 0 || !gwr) {
        fprintf(stderr, "usage: gwRulesBench [rules>=3] [names] [rounds] [batch 1..64]\n");
        return 2;
    }
    names = calloc(count, sizeof *names);
    for (i = 0; i < count; i++) {
        names[i] = malloc(64);
        /* a quarter served by specific rules, the rest by the general one */
        if (i % 4 == 0)
            snprintf(names[i], 64, "SYS%04u:DEV%u:VAL", (i / 4) % rules / 4 * 4, i);
        else
            snprintf(names[i], 64, "BL%u:motor%u:RBV", i % 50, i);
    }
    wrapper = gwRulesWrap(gwr, &stub);
    run(wrapper, names, count, 1, batch, &wall);   /* default list: warm up */
    cpu = run(wrapper, names, count, rounds, batch, &wall);
    printf("rules %u  names %u  batch %u\n", 1u, count, batch);
    printf("  none  %10.0f exist tests per CPU second  %10.0f per wall second\n", cpu, wall);
    if (writePvList(path, rules) != 0 || gwRulesLoadPvList(gwr, path) != 0)
        return 1;
    cpu = run(wrapper, names, count, 1, batch, &wall);
    printf("rules %u  names %u  batch %u\n", rules, count, batch);
    printf("  cold  %10.0f exist tests per CPU second  %10.0f per wall second\n", cpu, wall);
    cpu = run(wrapper, names, count, rounds, batch, &wall);
    printf("  warm  %10.0f exist tests per CPU second  %10.0f per wall second\n", cpu, wall);
    gwRulesUnwrap(gwr, wrapper);
    gwRulesDestroy(gwr);
    remove(path);
    close(fd);
    for (i = 0; i < count; i++)
        free(names[i]);
    free(names);
    epicsExit(0);
    return 0;
}

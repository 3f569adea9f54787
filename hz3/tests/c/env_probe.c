// Environment probe (issue 17 item 8): one allocation, so hz3 initialises and
// reads its HZ3_* variables, then exit. The test driver sets the variables and
// reads hz3's lines on stderr.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    char *volatile p = malloc(100);
    if (!p) return 1;
    p[0] = 1;
    free(p);
    puts("env_probe: ok");
    return 0;
}

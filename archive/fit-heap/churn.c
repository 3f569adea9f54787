#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <stdint.h>
static uint64_t s=88172645463325252ull;
static uint64_t rnd(void){ s^=s<<13; s^=s>>7; s^=s<<17; return s; }
static long rss(void){ FILE*f=fopen("/proc/self/status","r"); char l[256]; long v=0; while(fgets(l,256,f)) if(!strncmp(l,"VmRSS:",6)) v=atol(l+6); fclose(f); return v; }
int main(int argc,char**argv){
  int ws=2048; long iters=atol(argv[1]); void*slot[2048]={0}; size_t sz[2048]={0};
  long base=rss(); size_t live=0, usable=0; size_t maxlive=0;
  for(long i=0;i<iters;i++){ int k=rnd()%ws; if(slot[k]){ live-=sz[k]; usable-=malloc_usable_size(slot[k]); free(slot[k]); slot[k]=0;} else { size_t n=16+rnd()%4081; slot[k]=malloc(n); memset(slot[k],1,n); sz[k]=n; live+=n; usable+=malloc_usable_size(slot[k]); if(live>maxlive) maxlive=live; } }
  printf("base %ld KiB, rss %ld KiB (+%ld), live %zu KiB, usable %zu KiB, maxlive %zu KiB\n", base, rss(), rss()-base, live/1024, usable/1024, maxlive/1024);
  malloc_stats();
  return 0;
}

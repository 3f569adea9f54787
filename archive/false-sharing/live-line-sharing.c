// For each thread: churn random 16..256 B blocks over a 1000-slot working set,
// then (all threads paused) count 64 B lines holding live blocks of >= 2 threads.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#define WS 1000
int T, ITERS; uintptr_t *live; pthread_barrier_t b;
static uint64_t xs(uint64_t *s){*s^=*s<<13;*s^=*s>>7;*s^=*s<<17;return *s;}
void *w(void *a){ long id=(long)a; uint64_t s=id*2654435761u+1; char **slot=calloc(WS,sizeof(char*));
 for(int i=0;i<ITERS;i++){int k=xs(&s)%WS; if(slot[k]){free(slot[k]);slot[k]=0;} else {size_t n=16+xs(&s)%241; slot[k]=malloc(n); slot[k][0]=1;}}
 for(int k=0;k<WS;k++) live[id*WS+k]=(uintptr_t)slot[k];
 pthread_barrier_wait(&b); pthread_barrier_wait(&b);
 for(int k=0;k<WS;k++) free(slot[k]); free(slot); return 0;}
int cmp(const void*a,const void*b){uint64_t x=*(uint64_t*)a,y=*(uint64_t*)b;return x<y?-1:x>y;}
int main(int c,char**v){T=atoi(v[1]);ITERS=atoi(v[2]);live=calloc((size_t)T*WS,8);pthread_barrier_init(&b,0,T+1);
 pthread_t th[256];for(long i=0;i<T;i++)pthread_create(&th[i],0,w,(void*)i);
 pthread_barrier_wait(&b);
 size_t n=0; uint64_t *e=malloc((size_t)T*WS*16*8);
 for(int t=0;t<T;t++)for(int k=0;k<WS;k++){uintptr_t p=live[t*WS+k]; if(!p)continue; size_t sz=256; // lines the block may span: use usable size
   extern size_t malloc_usable_size(void*); sz=malloc_usable_size((void*)p);
   for(uintptr_t l=p/64;l<=(p+sz-1)/64;l++) e[n++]=(l<<8)|t;}
 qsort(e,n,8,cmp); size_t lines=0,shared=0; for(size_t i=0;i<n;){size_t j=i;int multi=0;while(j<n&&(e[j]>>8)==(e[i]>>8)){if((e[j]&255)!=(e[i]&255))multi=1;j++;}lines++;shared+=multi;i=j;}
 printf("T=%d lines=%zu shared_by_2+_threads=%zu (%.2f%%)\n",T,lines,shared,100.0*shared/lines);
 pthread_barrier_wait(&b); for(int i=0;i<T;i++)pthread_join(th[i],0);}

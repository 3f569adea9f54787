#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
int T; char **given; int scratch; uintptr_t got[256];
pthread_barrier_t b;
void *w(void *a){ long i=(long)a; if(scratch) free(given[i]); pthread_barrier_wait(&b); char *p=malloc(1); got[i]=(uintptr_t)p; pthread_barrier_wait(&b); free(p); return 0;}
int main(int c,char**v){T=atoi(v[1]);scratch=atoi(v[2]);given=malloc(sizeof(char*)*T);for(int i=0;i<T;i++)given[i]=malloc(1);
pthread_barrier_init(&b,0,T);pthread_t th[256];for(long i=0;i<T;i++)pthread_create(&th[i],0,w,(void*)i);for(int i=0;i<T;i++)pthread_join(th[i],0);
int shared=0;for(int i=0;i<T;i++)for(int j=i+1;j<T;j++)if(got[i]/64==got[j]/64)shared++;
printf("T=%d scratch=%d pairs sharing a line: %d\n",T,scratch,shared);
if(T<=8)for(int i=0;i<T;i++)printf(" %lx",got[i]);printf("\n");}

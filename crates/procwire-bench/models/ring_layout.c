// A model in C of the shared-memory pipe's ring protocol (docs/protocol.md, 13), for
// asking where a 64 B round trip across CPUs spends its time: where records lie in the
// ring, the record header, the fences, the waiting words, a prefetch. Two processes, one
// pinned to CPU 0 and one to CPU 1, run 64 B round trips through two rings; variants are
// taken in turns, in blocks of 5,000 round trips, so that a host whose speed changes from
// one second to the next changes each variant and the first one alike.
//
//   gcc -O2 -o ring_layout crates/procwire-bench/models/ring_layout.c
//   VARIANTS="4096:16:0,72:1024:0,72:1024:128" ./ring_layout 2400
//
// A variant is SPACE:COUNT:FLAGS: message n lies at (n % COUNT) * SPACE (72:1024 is the
// real layout of 72-byte records in a 72 KiB ring; 512:128 spaces them 512 bytes apart);
// FLAGS leave out, or add: 1 the fences, 2 the looks at the waiting words, 4 the consumer's
// tail, 8 the record header (the payload then starts on the line), 16 a prefetch of both of
// a record's lines, 64 of its first, 128 of its second, 256 of the line after, 32 sends
// 56-byte messages (header and payload in one line). It prints, for blocks whose first
// variant ran under or over 400 ns (this host's two speeds), the median time of each
// variant and the median of its ratio to the first variant of the same round.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sys/prctl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>
#define BLOCK 5000
static int nv; static uint64_t space[16], count[16], flags[16];
static inline uint64_t fl(uint64_t n){ return flags[(n/BLOCK)%nv]; }
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);sched_setaffinity(0,sizeof s,&s);}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
typedef struct { _Alignas(64) uint64_t head; _Alignas(64) uint32_t pwait, pcpu; _Alignas(64) uint64_t tail; _Alignas(64) uint32_t cwait, ccpu; } ctl_t;
typedef struct { ctl_t *c; char *d; uint64_t n; } end_t;
static inline uint64_t pos(uint64_t n){ int v=(n/BLOCK)%nv; return (n%count[v])*space[v]; }
static void send_msg(end_t *p, const char *m, uint32_t len){
  uint64_t off = pos(p->n), f = fl(p->n);
  if (f & 8) { memcpy(p->d+off, m, len); } else {
  memcpy(p->d+off+8, m, len);
  uint32_t *h=(uint32_t*)(p->d+off); __atomic_store_n(h,len,__ATOMIC_RELAXED); __atomic_store_n(h+1,len,__ATOMIC_RELAXED); }
  p->n++;
  __atomic_store_n(&p->c->head, p->n, __ATOMIC_RELEASE); if (!(f & 1)) __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!(f & 2) && __atomic_load_n(&p->c->cwait, __ATOMIC_RELAXED)) __atomic_exchange_n(&p->c->cwait, 0, __ATOMIC_RELAXED);
}
static int recv_msg(end_t *c, char *buf, uint32_t max){
  while (__atomic_load_n(&c->c->head, __ATOMIC_ACQUIRE) == c->n) _mm_pause();
  uint64_t off = pos(c->n), f = fl(c->n); uint32_t len;
  if (f & 16) { _mm_prefetch(c->d+off, _MM_HINT_T0); _mm_prefetch(c->d+off+64, _MM_HINT_T0); }
  if (f & 64) _mm_prefetch(c->d+off, _MM_HINT_T0);
  if (f & 128) _mm_prefetch(c->d+off+64, _MM_HINT_T0);
  if (f & 256) _mm_prefetch(c->d+off+128, _MM_HINT_T0);
  if (f & 8) { len = max < 64 ? max : 64; memcpy(buf, c->d+off, len); } else {
  uint32_t *hd=(uint32_t*)(c->d+off); uint32_t ml; len=__atomic_load_n(hd,__ATOMIC_RELAXED); ml=__atomic_load_n(hd+1,__ATOMIC_RELAXED);
  if (len != ml || len > max) return -1;
  memcpy(buf, c->d+off+8, len); }
  c->n++;
  if (!(f & 4)) __atomic_store_n(&c->c->tail, c->n, __ATOMIC_RELEASE);
  if (!(f & 1)) __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (!(f & 2) && __atomic_load_n(&c->c->pwait, __ATOMIC_RELAXED)) __atomic_exchange_n(&c->c->pwait, 0, __ATOMIC_RELAXED);
  return (int)len;
}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  char *spec=strdup(getenv("VARIANTS")); for(char*t=strtok(spec,",");t;t=strtok(0,",")){sscanf(t,"%lu:%lu:%lu",&space[nv],&count[nv],&flags[nv]);nv++;}
  int blocks=argc>1?atoi(argv[1]):400;
  char*m=mmap(0,1<<24,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
  ctl_t *c1=(ctl_t*)m, *c2=(ctl_t*)(m+1024); char *d1=m+(1<<20), *d2=m+(1<<23);
  char buf[64],ans[64]; memset(buf,7,64);
  if(fork()==0){prctl(PR_SET_PDEATHSIG,SIGKILL);pin(1);
    end_t in={c1,d1,0}, out={c2,d2,0}; char b[256];
    for(;;){int l=recv_msg(&in,b,256); if(l<0) _exit(2); if(l==0) _exit(0); send_msg(&out,b,l);}}
  pin(0); end_t out={c1,d1,0}, in={c2,d2,0};
  double *t=calloc(blocks,sizeof(double));
  for(int b=0;b<blocks;b++){ double t0=now();
    uint32_t sz = (flags[b%nv] & 32) ? 56 : 64; for(int i=0;i<BLOCK;i++){ send_msg(&out,buf,sz); if(recv_msg(&in,ans,64)!=(int)sz){printf("bad\n");return 1;} }
    t[b]=(now()-t0)/BLOCK; }
  // per variant and host state (the first variant's block under or over 400 ns): the
  // median of its ratio to the first variant's block of the same cycle
  for(int st=0;st<2;st++) for(int v=0;v<nv;v++){ static double x[65536],r[65536]; int k=0;
    for(int b=v;b<blocks;b+=nv){ int b0=b-v; if((t[b0]>=400)!=st) continue; x[k]=t[b]; r[k]=t[b]/t[b0]; k++; }
    if(!k) continue;
    qsort(x,k,sizeof(double),cmp); qsort(r,k,sizeof(double),cmp);
    printf("%s %lu:%lu:%lu n=%d median %.1f ns, ratio %.3f\n",st?"slow":"fast",space[v],count[v],flags[v],k,x[k/2],r[k/2]); }
  send_msg(&out,buf,0); wait(0); return 0;}

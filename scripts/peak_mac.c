/* The core's peak multiply-accumulate rates that BENCHMARKS.md compares the prefill with:
 * 8-bit (vpdpbusd zmm, AVX-512 VNNI) and f32 (vfmadd zmm), one thread, 12 independent
 * accumulators so that latency does not limit, best of 3.
 * Usage: gcc -O2 -march=native -o /tmp/peak_mac scripts/peak_mac.c && /tmp/peak_mac
 * (needs a CPU with AVX-512 VNNI). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  __m512i a=_mm512_set1_epi8(3), b=_mm512_set1_epi8(5);
  __m512i acc[12]; for(int i=0;i<12;i++) acc[i]=_mm512_set1_epi32(i);
  long n=200000000; double best=1e9;
  for(int rep=0;rep<3;rep++){ double t0=now();
  for(long i=0;i<n;i++){
    #pragma GCC unroll 12
    for(int j=0;j<12;j++) acc[j]=_mm512_dpbusd_epi32(acc[j],a,b);

  }
  double dt=now()-t0; if(dt<best)best=dt;}
  int s=0; for(int j=0;j<12;j++) s+=_mm512_reduce_add_epi32(acc[j]);
  printf("vpdpbusd zmm: %.1f GMAC/s (1 thread) [%d]\n", n*12*64/best/1e9, s);
  __m512 fa=_mm512_set1_ps(0.9999f), fb=_mm512_set1_ps(0.0001f); __m512 f[12]; for(int i=0;i<12;i++) f[i]=_mm512_set1_ps(i);
  best=1e9; for(int rep=0;rep<3;rep++){ double t0=now();
  for(long i=0;i<n;i++){
    #pragma GCC unroll 12
    for(int j=0;j<12;j++) f[j]=_mm512_fmadd_ps(f[j],fa,fb);

  }
  double dt=now()-t0; if(dt<best)best=dt;}
  float fs=0; for(int j=0;j<12;j++) fs+=_mm512_reduce_add_ps(f[j]);
  printf("vfmadd zmm: %.1f GFLOP/s (1 thread) [%g]\n", n*12*16*2/best/1e9, fs);
}

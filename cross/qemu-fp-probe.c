// Throughput of NEON operations under qemu-user, per CPU second: f32 fmla, f16->f32 fcvtl + fmla
// (what ggml does with Whisper's f16 weights on armv8-a without fp16 arithmetic), and int32 mla.
// TCG runs integer vector code as host code but floating point in software helpers; this shows the
// gap (cross/README.md, "Why Whisper is slow under qemu"). Each loop counts 2*n*reps operations.
//   aarch64-linux-gnu-gcc -O2 -march=armv8-a cross/qemu-fp-probe.c -o /tmp/probe
//   ~/.cache/sotto/qemu/usr/bin/qemu-aarch64 /tmp/probe 3000
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <arm_neon.h>
static double cpu(){struct timespec t;clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int n=4096, reps=atoi(argv[1]);
  float *a=malloc(n*4),*b=malloc(n*4); __fp16 *h=malloc(n*2); int32_t *x=malloc(n*4),*y=malloc(n*4);
  for(int i=0;i<n;i++){a[i]=i*1e-4f;b[i]=1.0f-i*1e-5f;h[i]=(__fp16)b[i];x[i]=i;y[i]=3-i;}
  double fl=2.0*n*reps, t; float s=0; int32_t si=0;
  t=cpu(); float32x4_t acc=vdupq_n_f32(0);
  for(int r=0;r<reps;r++) for(int i=0;i<n;i+=4) acc=vfmaq_f32(acc,vld1q_f32(a+i),vld1q_f32(b+i));
  double t1=cpu()-t; s+=vaddvq_f32(acc);
  t=cpu(); acc=vdupq_n_f32(0);
  for(int r=0;r<reps;r++) for(int i=0;i<n;i+=4) acc=vfmaq_f32(acc,vld1q_f32(a+i),vcvt_f32_f16(vld1_f16(h+i)));
  double t2=cpu()-t; s+=vaddvq_f32(acc);
  t=cpu(); int32x4_t ai=vdupq_n_s32(0);
  for(int r=0;r<reps;r++) for(int i=0;i<n;i+=4) ai=vmlaq_s32(ai,vld1q_s32(x+i),vld1q_s32(y+i));
  double t3=cpu()-t; si+=vaddvq_s32(ai);
  printf("per CPU second: f32 fmla %.0f MFLOP/s | f16->f32 fcvtl + fmla %.0f MFLOP/s | int32 mla %.0f Mop/s  (%g %d)\n",
         fl/t1/1e6, fl/t2/1e6, fl/t3/1e6, s, si);
}

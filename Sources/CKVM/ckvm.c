#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "ckvm.h"

const char *ckvm_errno_name(int err) {
    return strerrorname_np(err);
}

static __thread struct kvm_run *kick_run;

static void kick_handler(int signo) {
    (void)signo;
    struct kvm_run *run = kick_run;
    if (run) run->immediate_exit = 1;
}

int ckvm_kick_install(int signo) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = kick_handler;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL) == 0 ? 0 : -errno;
}

void ckvm_kick_set_run(struct kvm_run *run) {
    kick_run = run;
}

int ckvm_gettid(void) {
    return (int)syscall(SYS_gettid);
}

int ckvm_tgkill(int tid, int signo) {
    return (int)syscall(SYS_tgkill, getpid(), tid, signo);
}

long ckvm_timer_start(int signo, int tid, long long nanoseconds) {
    return ckvm_timer_start_periodic(signo, tid, nanoseconds, 0);
}

long ckvm_timer_start_periodic(int signo, int tid, long long nanoseconds, long long interval) {
    struct sigevent event;
    memset(&event, 0, sizeof event);
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = signo;
    event._sigev_un._tid = tid;
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) return -errno;
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (nanoseconds <= 0) nanoseconds = 1;
    spec.it_value.tv_sec = nanoseconds / 1000000000LL;
    spec.it_value.tv_nsec = nanoseconds % 1000000000LL;
    spec.it_interval.tv_sec = interval / 1000000000LL;
    spec.it_interval.tv_nsec = interval % 1000000000LL;
    if (timer_settime(timer, 0, &spec, NULL) != 0) {
        int err = errno;
        timer_delete(timer);
        return -err;
    }
    // timer_t is a small integer id on Linux; shift by one so 0 is never valid.
    return (long)(intptr_t)timer + 1;
}

void ckvm_timer_stop(long timer) {
    if (timer > 0) timer_delete((timer_t)(intptr_t)(timer - 1));
}

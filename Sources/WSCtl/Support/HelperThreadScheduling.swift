#if canImport(Glibc)
import Glibc
#endif

/// Marks the calling thread as one that must not preempt others when it wakes up (Linux's
/// `SCHED_BATCH`, which any thread may ask for itself; elsewhere, and if the call fails, nothing
/// changes). For the reading and printing threads of `sniff -r`.
///
/// The dissecting thread is the one the other two wait for, and the three share two cores. When
/// it handed a batch over, the thread it woke was often put on its core and took the core from it,
/// while the other core went idle (`perf sched timehist`: the dissecting thread was switched out 61
/// times in a run of the benchmark capture, and the second core idle 31% of the time). A batch
/// thread that wakes waits for a free core, or for its turn, instead: 31 switches, 18% idle. Its
/// share of the CPU over time is the same as before (same nice value).
func stopWakeupPreemptionForThisThread() {
    #if os(Linux)
    var parameters = sched_param()
    parameters.sched_priority = 0
    // SCHED_BATCH is 3 (<linux/sched.h>; Glibc's module does not bring the macro to Swift).
    _ = sched_setscheduler(0, 3, &parameters)
    #endif
}

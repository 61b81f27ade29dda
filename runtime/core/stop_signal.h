// SIGTERM and SIGUSR1 as a request to stop, not a kill: the handlers record the signal and
// the process carries on, so that the training loop checkpoints at its next step boundary
// (World installs them) and the collectives' watchdog can explain a call that is stuck when
// the job is being torn down.
//
//   InstallStopSignalHandlers();
//   ...
//   if (StopSignal() != 0) { checkpoint; exit for requeue }
#ifndef USINE_RUNTIME_CORE_STOP_SIGNAL_H_
#define USINE_RUNTIME_CORE_STOP_SIGNAL_H_

namespace usine {

// Installs the recording handlers for SIGTERM and SIGUSR1. Idempotent.
void InstallStopSignalHandlers();

// The last of SIGTERM/SIGUSR1 received since the handlers were installed, or 0. Async-signal
// safe to read from any thread.
int StopSignal();

// Forgets the recorded signal, for a process that has acted on it and goes on (a test that
// runs several trainings).
void ClearStopSignal();

}  // namespace usine

#endif  // USINE_RUNTIME_CORE_STOP_SIGNAL_H_

#include "runtime/core/stop_signal.h"

#include <csignal>

namespace usine {
namespace {

volatile std::sig_atomic_t stop_signal = 0;

extern "C" void RecordStopSignal(int signal) { stop_signal = signal; }

}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction action = {};
  action.sa_handler = &RecordStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGUSR1, &action, nullptr);
}

int StopSignal() { return stop_signal; }

void ClearStopSignal() { stop_signal = 0; }

}  // namespace usine

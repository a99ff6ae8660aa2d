// Faults the CUDA emulation's tests switch on (DIFFTRON_EMU_MUTATION=name,...)
// to prove they catch a class of bug: a removed event wait, the deadlocking
// ring grouping, an atomic backward. DT_MUTATION(name) is the constant false
// in every build but the emulation's (tests/cuda_emulation/device.cpp).
#pragma once

#ifdef DIFFTRON_CUDA_EMULATION
namespace emu {
bool mutation(const char* name);
}
#define DT_MUTATION(name) ::emu::mutation(name)
#else
#define DT_MUTATION(name) false
#endif

// Hooks into the CUDA emulation of the tests (tests/cuda_emulation), which
// are constants in every other build:
//   DT_MUTATION(name): a fault the emulation's tests switch on
//     (DIFFTRON_EMU_MUTATION=name,...) to prove they catch a class of bug (a
//     removed event wait, the deadlocking ring grouping, an atomic backward);
//   DT_IS_DEVICE_MEMORY(p): whether p points into emulated device memory, so
//     host code handed a device pointer (which a GPU would fault on) fails
//     there too instead of silently reading device memory the device thread
//     is writing.
#pragma once

#ifdef DIFFTRON_CUDA_EMULATION
namespace emu {
bool mutation(const char* name);
bool is_device_memory(const void* p);
}  // namespace emu
#define DT_MUTATION(name) ::emu::mutation(name)
#define DT_IS_DEVICE_MEMORY(p) ::emu::is_device_memory(p)
#else
#define DT_MUTATION(name) false
#define DT_IS_DEVICE_MEMORY(p) false
#endif

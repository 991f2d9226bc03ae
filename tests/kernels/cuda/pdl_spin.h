// Kernels for the test of programmatic dependent launches (pdl_test.cpp): one that lets the
// next kernel on the stream start at once (griddepcontrol.launch_dependents) and then keeps
// running for a while, and one launched by launch_pdl that records when it started and when
// its griddepcontrol.wait returned.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::test {

// One thread that releases its dependents, spins for `microseconds` of %globaltimer, and
// stores the time it stopped in *end_ns (device memory).
cudaError_t launch_pdl_spin(cudaStream_t stream, int microseconds, uint64_t* end_ns);

// A one-thread launch_pdl kernel that stores %globaltimer before and after its
// griddepcontrol.wait into times_ns[0] and times_ns[1] (device memory).
cudaError_t launch_pdl_timestamps(cudaStream_t stream, uint64_t* times_ns);

}  // namespace strata::test

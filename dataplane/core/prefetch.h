// Prefetch hints the compiler cannot delete.
//
// GCC does not count __builtin_prefetch as a side effect: a function whose only work is
// prefetching (ConnTable::PrefetchEntry, Forwarder::PrefetchNatReverse) is deduced pure, and
// a call to a pure function returning void is dead code, so whole prefetch passes vanished from
// ProcessBurst once those functions became visible to it (the 2^16..2^20-flow rows doubled).
// An asm volatile is never removed. The address goes in as a register operand, so no C++
// dereference happens: any pointer value is fine (prefetches never fault).
#ifndef LBNODE_DATAPLANE_CORE_PREFETCH_H_
#define LBNODE_DATAPLANE_CORE_PREFETCH_H_

namespace lb {

// Starts loading the cache line holding `p` for reading.
inline void PrefetchRead(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#else
  __builtin_prefetch(p, 0, 3);
  asm volatile("" : : "r"(p));
#endif
}

// The same with intent to write (PREFETCHW where the target has it).
inline void PrefetchWrite(const void* p) {
#if defined(__x86_64__) && defined(__PRFCHW__)
  asm volatile("prefetchw (%0)" : : "r"(p));
#elif defined(__x86_64__)
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#else
  __builtin_prefetch(p, 1, 3);
  asm volatile("" : : "r"(p));
#endif
}

}  // namespace lb

#endif  // LBNODE_DATAPLANE_CORE_PREFETCH_H_

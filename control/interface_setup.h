// Sets up the exception-path interface (the TAP lbnode's dataplane creates): the uplink's MAC, so
// that neighbours answering the kernel's ARP/ND reach the node through the uplink; the MTU, which
// must match the router's or OSPF stalls in ExStart; the node's addresses; link up. Idempotent:
// a restarted lbnode gets a fresh TAP and sets it up again. Control thread only.
#ifndef LBNODE_CONTROL_INTERFACE_SETUP_H_
#define LBNODE_CONTROL_INTERFACE_SETUP_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dataplane/core/rewrite.h"

namespace lb {

struct InterfaceSpec {
  std::string name;
  MacAddr mac{};
  uint32_t mtu = 1500;
  std::vector<std::string> addresses;  // CIDR
  // IPv4 ARP on the uplink is answered by this interface; the kernel must not also answer ARP
  // for these addresses on other interfaces of the node (arp_ignore is the operator's business).
};

absl::Status SetUpInterface(const InterfaceSpec& spec);

}  // namespace lb

#endif  // LBNODE_CONTROL_INTERFACE_SETUP_H_

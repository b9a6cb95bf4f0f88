#include "dataplane/core/snapshot.h"

namespace lb {

void PrepareSnapshot(Snapshot* s) {
  s->has_nat_vip = false;
  for (const VipEntry& v : s->vips) {
    s->has_nat_vip |= v.handle != 0 && v.mode == ForwardingMode::kNat;
  }
  for (BackendEntry& b : s->backends) {
    b.tunnel = TunnelTemplate();
    const VipEntry* vip = b.handle != 0 ? s->Vip(b.vip) : nullptr;
    if (vip == nullptr || !b.resolved ||
        (vip->mode != ForwardingMode::kTun && vip->mode != ForwardingMode::kGue)) {
      continue;
    }
    const bool v4 = b.family == IpFamily::kIpv4;
    if (v4 ? !s->node.has_tunnel_src4 : !s->node.has_tunnel_src6) continue;
    // The same parameters as the forwarder's field-by-field path (Forwarder::Send).
    TunnelParams t;
    t.src_mac = s->node.port_mac;
    t.dst_mac = b.next_hop_mac;
    t.outer_family = b.family;
    t.outer_src = v4 ? s->node.tunnel_src4 : s->node.tunnel_src6;
    t.outer_dst = b.addr;
    t.gue = vip->mode == ForwardingMode::kGue;
    t.gue_dst_port = s->node.gue_port;
    BuildTunnelTemplate(t, &b.tunnel);
  }
}

}  // namespace lb

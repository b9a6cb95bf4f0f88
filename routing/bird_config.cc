#include "routing/bird_config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace lb {
namespace {

// Characters that may appear inside a BIRD string literal we write: BIRD strings have no
// escapes, so '"' and '\' are out, and so is anything unprintable.
bool SafeInBirdString(absl::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

absl::Status FieldError(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

bool ParseDottedQuad(absl::string_view s, in_addr* a) {
  return inet_pton(AF_INET, std::string(s).c_str(), a) == 1;
}

absl::Status ValidateArea(absl::string_view area) {
  uint32_t n;
  in_addr a;
  if (absl::SimpleAtoi(area, &n) && !area.empty() && absl::ascii_isdigit(area[0])) {
    return absl::OkStatus();
  }
  if (ParseDottedQuad(area, &a)) return absl::OkStatus();
  return FieldError("area", absl::StrCat("not a number or dotted quad: \"", area, "\""));
}

absl::Status ValidateInterface(absl::string_view name) {
  // Linux interface names: 1-15 bytes, no '/', no whitespace. Stricter here: no BIRD pattern
  // characters ('*', '?') and nothing that needs quoting.
  if (name.empty() || name.size() > 15) {
    return FieldError("interface", absl::StrCat("must be 1-15 characters: \"", name, "\""));
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.' && c != '@') {
      return FieldError("interface", absl::StrCat("bad character in \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OspfKey>> ReadKeys(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return FieldError("auth_key_file", absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  std::stringstream ss;
  ss << f.rdbuf();
  absl::StatusOr<std::vector<OspfKey>> keys = ParseOspfKeys(ss.str(), path);
  if (!keys.ok()) return FieldError("auth_key_file", keys.status().message());
  return keys;
}

// Validates and returns the canonical VIP prefixes, IPv4 first, each family sorted.
absl::StatusOr<std::pair<std::set<std::string>, std::set<std::string>>> VipSets(
    const BirdNodeConfig& c) {
  std::set<std::string> v4, v6;
  for (size_t i = 0; i < c.vips.size(); ++i) {
    absl::StatusOr<std::string> p = VipPrefix(c.vips[i]);
    if (!p.ok()) return FieldError(absl::StrCat("vips[", i, "]"), p.status().message());
    const bool is_v6 = absl::StrContains(*p, ':');
    if (is_v6 && !c.ipv6) {
      return FieldError(absl::StrCat("vips[", i, "]"), "IPv6 VIP but ipv6 (OSPFv3) is off");
    }
    if (!is_v6 && !c.ipv4) {
      return FieldError(absl::StrCat("vips[", i, "]"), "IPv4 VIP but ipv4 (OSPFv2) is off");
    }
    (is_v6 ? v6 : v4).insert(*p);
  }
  return std::make_pair(std::move(v4), std::move(v6));
}

absl::StatusOr<std::vector<OspfKey>> Validate(const BirdNodeConfig& c) {
  in_addr rid;
  if (c.router_id.empty()) return FieldError("router_id", "required");
  if (!ParseDottedQuad(c.router_id, &rid)) {
    return FieldError("router_id", absl::StrCat("not a dotted quad: \"", c.router_id, "\""));
  }
  if (rid.s_addr == 0) return FieldError("router_id", "0.0.0.0 is not a valid router id");
  if (absl::Status s = ValidateArea(c.area); !s.ok()) return s;
  if (absl::Status s = ValidateInterface(c.interface); !s.ok()) return s;
  if (c.hello_s < 1 || c.hello_s > 65535) return FieldError("hello_s", "must be 1-65535");
  if (c.dead_s <= c.hello_s || c.dead_s > 65535) {
    return FieldError("dead_s",
                      absl::StrCat("must exceed hello_s (", c.hello_s, ") and be at most 65535"));
  }
  if (c.cost < 1 || c.cost > 65535) return FieldError("cost", "must be 1-65535");
  if (!c.ipv4 && !c.ipv6) return FieldError("ipv4", "ipv4 and ipv6 are both off");
  if (c.bfd) {
    const BirdBfdOptions& b = c.bfd_options;
    if (b.min_rx_ms < 1 || b.min_rx_ms > 60000) {
      return FieldError("bfd_options.min_rx_ms", "must be 1-60000");
    }
    if (b.min_tx_ms < 1 || b.min_tx_ms > 60000) {
      return FieldError("bfd_options.min_tx_ms", "must be 1-60000");
    }
    if (b.multiplier < 1 || b.multiplier > 255) {
      return FieldError("bfd_options.multiplier", "must be 1-255");
    }
  }
  if (!c.log_file.empty() && c.log_file != "stderr") {
    if (c.log_file[0] != '/') return FieldError("log_file", "must be an absolute path");
    if (!SafeInBirdString(c.log_file)) {
      return FieldError("log_file", "must not contain quotes, backslashes or control characters");
    }
  }
  absl::StatusOr<std::pair<std::set<std::string>, std::set<std::string>>> vips = VipSets(c);
  if (!vips.ok()) return vips.status();
  if (c.auth_key_file.empty()) return std::vector<OspfKey>{};
  return ReadKeys(c.auth_key_file);
}

void RenderOspf(const BirdNodeConfig& c, bool v6, const std::set<std::string>& stubnets,
                const std::vector<OspfKey>& keys, std::string* out) {
  absl::StrAppend(out, "protocol ospf ", v6 ? "v3 " : "v2 ",
                  v6 ? kBirdOspf6Protocol : kBirdOspf4Protocol, " {\n");
  // The node learns nothing from OSPF and exports nothing into it: VIPs are stubnets of its
  // router-LSA, not external routes.
  absl::StrAppend(out, "  ", v6 ? "ipv6" : "ipv4", " { import none; export none; };\n");
  if (c.debug_ospf) absl::StrAppend(out, "  debug { states, events };\n");
  absl::StrAppend(out, "  area ", c.area, " {\n");
  for (const std::string& p : stubnets) {
    absl::StrAppend(out, "    stubnet ", p, " { cost ", c.cost, "; };\n");
  }
  absl::StrAppend(out, "    interface \"", c.interface, "\" {\n");
  absl::StrAppend(out, "      type broadcast;\n      priority 0;\n      cost ", c.cost, ";\n");
  absl::StrAppend(out, "      hello ", c.hello_s, ";\n      dead ", c.dead_s, ";\n");
  if (c.bfd) absl::StrAppend(out, "      bfd yes;\n");
  if (!keys.empty()) {
    absl::StrAppend(out, "      authentication cryptographic;\n");
    for (const OspfKey& k : keys) {
      absl::StrAppend(out, "      password \"", k.secret, "\" { id ", k.id,
                      "; algorithm hmac sha256; };\n");
    }
  }
  absl::StrAppend(out, "    };\n  };\n}\n");
}

}  // namespace

absl::StatusOr<std::vector<OspfKey>> ParseOspfKeys(absl::string_view text, absl::string_view name) {
  std::vector<OspfKey> keys;
  std::set<uint32_t> ids;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    const std::string where = absl::StrCat(name, " line ", line_no, ": ");
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "expected \"<key id> <secret>\", got ", f.size(), " fields"));
    }
    OspfKey k;
    if (!absl::SimpleAtoi(f[0], &k.id) || !absl::ascii_isdigit(f[0][0]) || k.id > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "key id \"", f[0], "\" is not a number in 0-255"));
    }
    if (!ids.insert(k.id).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "duplicate key id ", k.id));
    }
    if (f[1].size() < kMinOspfSecret || f[1].size() > kMaxOspfSecret) {
      return absl::InvalidArgumentError(absl::StrCat(where, "key ", k.id, ": secret has ",
                                                     f[1].size(), " characters, must have ",
                                                     kMinOspfSecret, "-", kMaxOspfSecret));
    }
    if (!SafeInBirdString(f[1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "key ", k.id, ": secret must be printable ASCII without '\"' or '\\'"));
    }
    k.secret = std::string(f[1]);
    keys.push_back(std::move(k));
  }
  if (keys.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": no keys"));
  return keys;
}

absl::StatusOr<std::string> VipPrefix(absl::string_view vip) {
  absl::string_view addr = vip;
  absl::string_view len;
  bool has_len = false;
  if (const size_t slash = vip.find('/'); slash != absl::string_view::npos) {
    addr = vip.substr(0, slash);
    len = vip.substr(slash + 1);
    has_len = true;
  }
  const std::string a(addr);
  char buf[INET6_ADDRSTRLEN];
  in_addr v4;
  in6_addr v6;
  if (inet_pton(AF_INET, a.c_str(), &v4) == 1) {
    if (has_len && len != "32") {
      return absl::InvalidArgumentError(absl::StrCat("an IPv4 VIP must be a /32: \"", vip, "\""));
    }
    if (v4.s_addr == 0 || (ntohl(v4.s_addr) >> 28) >= 14) {  // multicast, reserved, broadcast
      return absl::InvalidArgumentError(absl::StrCat("not a unicast address: \"", vip, "\""));
    }
    inet_ntop(AF_INET, &v4, buf, sizeof(buf));
    return absl::StrCat(buf, "/32");
  }
  if (inet_pton(AF_INET6, a.c_str(), &v6) == 1) {
    if (has_len && len != "128") {
      return absl::InvalidArgumentError(absl::StrCat("an IPv6 VIP must be a /128: \"", vip, "\""));
    }
    if (IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_MULTICAST(&v6) || IN6_IS_ADDR_LINKLOCAL(&v6) ||
        IN6_IS_ADDR_V4MAPPED(&v6)) {
      return absl::InvalidArgumentError(
          absl::StrCat("not a global unicast address: \"", vip, "\""));
    }
    inet_ntop(AF_INET6, &v6, buf, sizeof(buf));
    return absl::StrCat(buf, "/128");
  }
  return absl::InvalidArgumentError(absl::StrCat("not an IP address: \"", vip, "\""));
}

absl::Status ValidateBirdNodeConfig(const BirdNodeConfig& config) {
  return Validate(config).status();
}

absl::StatusOr<std::string> RenderBirdConfig(const BirdNodeConfig& c) {
  absl::StatusOr<std::vector<OspfKey>> keys = Validate(c);
  if (!keys.ok()) return keys.status();
  absl::StatusOr<std::pair<std::set<std::string>, std::set<std::string>>> vips = VipSets(c);
  if (!vips.ok()) return vips.status();

  std::string out =
      "# Rendered by lbnode (routing/bird_config.cc); lbnode rewrites this file on every\n"
      "# VIP change, so edits here are lost.\n";
  if (c.log_file.empty()) {
    absl::StrAppend(&out, "log syslog all;\n");
  } else if (c.log_file == "stderr") {
    absl::StrAppend(&out, "log stderr all;\n");
  } else {
    absl::StrAppend(&out, "log \"", c.log_file, "\" all;\n");
  }
  absl::StrAppend(&out, "router id ", c.router_id, ";\n\n");
  absl::StrAppend(&out, "protocol device { scan time 10; }\n\n");
  if (c.bfd) {
    const BirdBfdOptions& b = c.bfd_options;
    absl::StrAppend(&out, "protocol bfd ", kBirdBfdProtocol, " {\n  interface \"", c.interface,
                    "\" {\n    min rx interval ", b.min_rx_ms, " ms;\n    min tx interval ",
                    b.min_tx_ms, " ms;\n    multiplier ", b.multiplier, ";\n  };\n}\n\n");
  }
  if (c.ipv4) {
    RenderOspf(c, /*v6=*/false, vips->first, *keys, &out);
    if (c.ipv6) out += "\n";
  }
  if (c.ipv6) RenderOspf(c, /*v6=*/true, vips->second, *keys, &out);
  return out;
}

}  // namespace lb

// Rendering and validation of the node's BIRD config. Rendered configs are also fed to the
// real `bird -p` (parse only) when BIRD is installed, so a syntax slip fails here, not on a node.
#include "routing/bird_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"

namespace lb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bird_config_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << content;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

BirdNodeConfig Minimal() {
  BirdNodeConfig c;
  c.router_id = "10.99.0.11";
  c.vips = {"10.99.100.2", "fd99:100::1", "10.99.100.1/32", "10.99.100.2"};
  return c;
}

// `bird -p -c file`: BIRD's own parser. Skips (returns true) without BIRD.
::testing::AssertionResult BirdParses(const std::string& file) {
  if (access("/usr/sbin/bird", X_OK) != 0) return ::testing::AssertionSuccess();
  const std::string cmd = "/usr/sbin/bird -p -c " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof(buf), p)) out += buf;
  const int rc = pclose(p);
  if (rc == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "bird -p rejected " << file << ": " << out;
}

TEST(RenderBirdConfig, MinimalGolden) {
  absl::StatusOr<std::string> text = RenderBirdConfig(Minimal());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            R"(# Rendered by lbnode (routing/bird_config.cc); lbnode rewrites this file on every
# VIP change, so edits here are lost.
log syslog all;
router id 10.99.0.11;

protocol device { scan time 10; }

protocol ospf v2 lb_ospf4 {
  ipv4 { import none; export none; };
  area 0 {
    stubnet 10.99.100.1/32 { cost 10; };
    stubnet 10.99.100.2/32 { cost 10; };
    interface "lb0" {
      type broadcast;
      priority 0;
      cost 10;
      hello 1;
      dead 4;
    };
  };
}

protocol ospf v3 lb_ospf6 {
  ipv6 { import none; export none; };
  area 0 {
    stubnet fd99:100::1/128 { cost 10; };
    interface "lb0" {
      type broadcast;
      priority 0;
      cost 10;
      hello 1;
      dead 4;
    };
  };
}
)");
  TempDir dir;
  EXPECT_TRUE(BirdParses(dir.Write("bird.conf", *text)));
}

TEST(RenderBirdConfig, EverythingOnParsesInBird) {
  TempDir dir;
  BirdNodeConfig c = Minimal();
  c.interface = "veth-n1";
  c.area = "0.0.0.1";
  c.cost = 20;
  c.hello_s = 2;
  c.dead_s = 8;
  c.bfd = true;
  c.bfd_options = {200, 150, 5};
  c.auth_key_file =
      dir.Write("keys", "# rotation: old key first\n1 first-secret-1\n\n 2\tsecond-secret!\n");
  c.log_file = dir.path() + "/bird.log";
  c.debug_ospf = true;
  absl::StatusOr<std::string> text = RenderBirdConfig(c);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr(absl::StrCat("log \"", dir.path(), "/bird.log\" all;")));
  EXPECT_THAT(*text, HasSubstr("protocol bfd lb_bfd {\n  interface \"veth-n1\" {\n"
                               "    min rx interval 200 ms;\n    min tx interval 150 ms;\n"
                               "    multiplier 5;\n"));
  EXPECT_THAT(*text, HasSubstr("  area 0.0.0.1 {\n    stubnet 10.99.100.1/32 { cost 20; };"));
  EXPECT_THAT(*text,
              HasSubstr("      hello 2;\n      dead 8;\n      bfd yes;\n"
                        "      authentication cryptographic;\n"
                        "      password \"first-secret-1\" { id 1; algorithm hmac sha256; };\n"
                        "      password \"second-secret!\" { id 2; algorithm hmac sha256; };\n"));
  EXPECT_THAT(*text, HasSubstr("debug { states, events };"));
  EXPECT_TRUE(BirdParses(dir.Write("bird.conf", *text)));
}

TEST(RenderBirdConfig, SingleFamilyAndNoVips) {
  BirdNodeConfig c;
  c.router_id = "192.0.2.1";
  c.ipv6 = false;
  absl::StatusOr<std::string> text = RenderBirdConfig(c);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr("protocol ospf v2 lb_ospf4"));
  EXPECT_THAT(*text, Not(HasSubstr("lb_ospf6")));
  EXPECT_THAT(*text, Not(HasSubstr("stubnet")));
  TempDir dir;
  EXPECT_TRUE(BirdParses(dir.Write("bird.conf", *text)));
}

TEST(VipPrefix, CanonicalHostPrefixes) {
  EXPECT_EQ(*VipPrefix("10.0.0.1"), "10.0.0.1/32");
  EXPECT_EQ(*VipPrefix("10.0.0.1/32"), "10.0.0.1/32");
  EXPECT_EQ(*VipPrefix("2001:DB8:0::0001"), "2001:db8::1/128");
  EXPECT_EQ(*VipPrefix("2001:db8::1/128"), "2001:db8::1/128");
  for (const char* bad :
       {"10.0.0", "10.0.0.1/24", "10.0.0.1/", "2001:db8::1/64", "224.0.0.5", "255.255.255.255",
        "0.0.0.0", "::", "fe80::1", "ff02::5", "::ffff:10.0.0.1", "", "10.0.0.1 ", "host"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(VipPrefix(bad).status())) << bad;
  }
}

void ExpectFieldError(const BirdNodeConfig& c, const std::string& field) {
  const absl::Status s = ValidateBirdNodeConfig(c);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), testing::StartsWith(field + ":")) << s;
  EXPECT_FALSE(RenderBirdConfig(c).ok());
}

TEST(ValidateBirdNodeConfig, ErrorsNameTheField) {
  EXPECT_TRUE(ValidateBirdNodeConfig(Minimal()).ok());
  BirdNodeConfig c = Minimal();
  c.router_id = "";
  ExpectFieldError(c, "router_id");
  c.router_id = "10.0.0";
  ExpectFieldError(c, "router_id");
  c.router_id = "0.0.0.0";
  ExpectFieldError(c, "router_id");
  c.router_id = "fd00::1";
  ExpectFieldError(c, "router_id");

  c = Minimal();
  c.area = "backbone";
  ExpectFieldError(c, "area");
  c.area = "-1";
  ExpectFieldError(c, "area");
  c.area = "4294967296";
  ExpectFieldError(c, "area");

  c = Minimal();
  c.interface = "";
  ExpectFieldError(c, "interface");
  c.interface = "lb*";
  ExpectFieldError(c, "interface");
  c.interface = "a\"; protocol";
  ExpectFieldError(c, "interface");
  c.interface = "sixteen-chars-xx";
  ExpectFieldError(c, "interface");

  c = Minimal();
  c.hello_s = 0;
  ExpectFieldError(c, "hello_s");
  c = Minimal();
  c.dead_s = 1;
  ExpectFieldError(c, "dead_s");
  c = Minimal();
  c.cost = 0;
  ExpectFieldError(c, "cost");
  c = Minimal();
  c.ipv4 = c.ipv6 = false;
  c.vips.clear();
  ExpectFieldError(c, "ipv4");

  c = Minimal();
  c.bfd = true;
  c.bfd_options.multiplier = 0;
  ExpectFieldError(c, "bfd_options.multiplier");
  c.bfd_options = {0, 100, 3};
  ExpectFieldError(c, "bfd_options.min_rx_ms");

  c = Minimal();
  c.log_file = "bird.log";
  ExpectFieldError(c, "log_file");
  c.log_file = "/var/log/\"bird.log";
  ExpectFieldError(c, "log_file");

  c = Minimal();
  c.vips = {"10.0.0.1", "10.0.0.300"};
  ExpectFieldError(c, "vips[1]");
  c.vips = {"10.0.0.1/24"};
  ExpectFieldError(c, "vips[0]");
  c = Minimal();
  c.ipv6 = false;
  ExpectFieldError(c, "vips[1]");  // fd99:100::1 with OSPFv3 off

  c = Minimal();
  c.auth_key_file = "/nonexistent/keys";
  ExpectFieldError(c, "auth_key_file");
}

TEST(ParseOspfKeys, GoodFile) {
  absl::StatusOr<std::vector<OspfKey>> k =
      ParseOspfKeys("# comment\n\n0 zero-key-0\n255   ~!@#$%^&*()_+{}|:<>?\n", "keys");
  ASSERT_TRUE(k.ok()) << k.status();
  ASSERT_EQ(k->size(), 2u);
  EXPECT_EQ((*k)[0].id, 0u);
  EXPECT_EQ((*k)[0].secret, "zero-key-0");
  EXPECT_EQ((*k)[1].id, 255u);
}

TEST(ParseOspfKeys, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"", "keys: no keys"},
      {"# only a comment\n", "keys: no keys"},
      {"1\n", "keys line 1: expected \"<key id> <secret>\", got 1 fields"},
      {"1 a b\n", "got 3 fields"},
      {"256 secret-secret\n", "keys line 1: key id \"256\" is not a number in 0-255"},
      {"-1 secret-secret\n", "key id \"-1\""},
      {"x secret-secret\n", "key id \"x\""},
      {"1 secret-1\n1 secret-2\n", "keys line 2: duplicate key id 1"},
      {"1 short\n", "key 1: secret has 5 characters, must have 8-128"},
      {"1 quote\"inside\n", "printable ASCII without"},
      {"1 back\\slash-x\n", "printable ASCII without"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<OspfKey>> k = ParseOspfKeys(c.text, "keys");
    EXPECT_TRUE(absl::IsInvalidArgument(k.status())) << c.text;
    EXPECT_THAT(std::string(k.status().message()), HasSubstr(c.error)) << c.text;
  }
  EXPECT_FALSE(ParseOspfKeys("1 " + std::string(129, 'a'), "keys").ok());
  EXPECT_TRUE(ParseOspfKeys("1 " + std::string(128, 'a'), "keys").ok());
}

TEST(ValidateBirdNodeConfig, KeyFileErrorsNameFileAndLine) {
  TempDir dir;
  BirdNodeConfig c = Minimal();
  c.auth_key_file = dir.Write("keys", "1 good-secret\n300 other-secret\n");
  const absl::Status s = ValidateBirdNodeConfig(c);
  EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("auth_key_file: ", c.auth_key_file,
                                                               " line 2: key id \"300\"")));
}

}  // namespace
}  // namespace lb

// Fuzz target: net::parse_network on any text. A network it accepts is one of Go's, and
// printing it back gives the same network; a refusal is one of the two documented
// errors, and both call forms agree.
#include "fuzz_check.hpp"

#include <ipckit/net.hpp>

#include <string>

namespace net = ipckit::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ipckit::error_code ec;
  const net::network n = net::parse_network(text, ec);
  bool thrown = false;
  try {
    (void)net::parse_network(text);
  } catch (const ipckit::system_error& e) {
    thrown = true;
    FUZZ_CHECK(e.code() == ec);
    FUZZ_CHECK(std::string_view(e.what()).starts_with("parse"));
  }
  FUZZ_CHECK(thrown == static_cast<bool>(ec));
  if (ec) {
    FUZZ_CHECK(ec == net::errc::unknown_network || ec == net::errc::unknown_protocol);
    FUZZ_CHECK(n.name.empty() && n.socket_type == 0 && n.protocol == 0);
    return 0;
  }
  // The name is a prefix of the text: all of it, or "ip…:" and a protocol.
  FUZZ_CHECK(text.starts_with(n.name));
  FUZZ_CHECK(n.family == AF_UNSPEC || n.family == AF_INET || n.family == AF_INET6 ||
             n.family == AF_UNIX);
  if (n.is_ip()) {
    FUZZ_CHECK(text.size() > n.name.size() && text[n.name.size()] == ':');
    FUZZ_CHECK(n.name.starts_with("ip") && !n.is_unix());
    FUZZ_CHECK(n.protocol >= 0 && n.protocol < 0xFFFFFF);
    const net::network again = net::parse_network(n.name + ":" + std::to_string(n.protocol), ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(again.family == n.family && again.socket_type == n.socket_type &&
               again.protocol == n.protocol && again.name == n.name);
  } else {
    FUZZ_CHECK(text == n.name);
    FUZZ_CHECK(n.protocol == 0);
    FUZZ_CHECK(n.is_unix() == n.name.starts_with("unix"));
  }
  return 0;
}

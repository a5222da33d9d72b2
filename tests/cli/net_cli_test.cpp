// `ipckit dial`, `ipckit listen` and `ipckit fifo` as a user runs them, against each other,
// python3 and the shell.
#include "test_support.hpp"

#include <gmock/gmock.h>

#include <regex>

namespace {

using namespace std::chrono_literals;
using ipckit::test::cli_path;
using ipckit::test::peer_process;
using ipckit::test::run_process;
using testing::HasSubstr;

class cli_net : public ipckit::test::temp_dir_test {
 protected:
  // Starts `ipckit listen ARGS…` with stderr joined to stdout (through the shell), and
  // returns the address from its "listening on NET ADDRESS" line.
  std::string start_listener(std::unique_ptr<peer_process>& listener, std::vector<std::string> args) {
    std::string command = "exec '" + cli_path() + "' listen";
    for (const auto& arg : args) command += " '" + arg + "'";
    listener = std::make_unique<peer_process>(std::vector<std::string>{"sh", "-c", command + " 2>&1"});
    auto line = listener->read_line(10s);
    if (!line) return "";
    std::smatch m;
    if (!std::regex_match(*line, m, std::regex("listening on \\S+ (.*)"))) return "";
    return m[1];
  }
};

struct echo_case {
  const char* net;
  const char* address;  // "DIR" is replaced by the test's directory
};

TEST_F(cli_net, dial_gets_every_line_back_from_listen_echo_on_each_network) {
  const echo_case table[] = {
      // streams: bytes, half-close at stdin EOF
      {"tcp4", "127.0.0.1:0"}, {"tcp", "127.0.0.1:0"}, {"unix", "DIR/s.sock"},
      // packets: one line, one datagram
      {"udp4", "127.0.0.1:0"}, {"unixpacket", "DIR/p.sock"}, {"unixgram", "DIR/g.sock"},
  };
  for (const auto& row : table) {
    std::string where = std::regex_replace(row.address, std::regex("DIR"), dir().string());
    std::unique_ptr<peer_process> listener;
    const std::string address = start_listener(listener, {"--echo", row.net, where});
    ASSERT_FALSE(address.empty()) << row.net;
    auto dialed = run_process({cli_path(), "dial", "--linger", "500ms", row.net, address},
                              "hello\nworld\n", 20s);
    EXPECT_EQ(dialed.exit_code, 0) << row.net << ": " << dialed.err;
    EXPECT_EQ(dialed.out, "hello\nworld\n") << row.net;
  }
}

TEST_F(cli_net, listen_prints_what_a_python_client_sends_and_exits_at_its_eof) {
  const std::string path = (dir() / "py.sock").string();
  std::unique_ptr<peer_process> listener;
  ASSERT_EQ(start_listener(listener, {"unix", path}), path);
  auto client = run_process({"python3", "-c",
                             "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                             "s.sendall(b'from python\\n'); s.close()",
                             path});
  ASSERT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(listener->read_line(10s), "from python");
  EXPECT_EQ(listener->wait(10s), 0);
  EXPECT_FALSE(std::filesystem::exists(path)) << "the socket file outlived the listener";
}

TEST_F(cli_net, dial_errors_read_as_go_prints_them) {
  auto refused = run_process({cli_path(), "dial", "tcp", "127.0.0.1:1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err, "dial tcp 127.0.0.1:1: connect: connection refused\n");
  auto unknown = run_process({cli_path(), "dial", "tcpx", "127.0.0.1:80"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(unknown.err, "dial tcpx 127.0.0.1:80: unknown network tcpx\n");
  auto usage = run_process({cli_path(), "dial", "tcp"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.err, HasSubstr("expected NETWORK ADDRESS"));
}

TEST_F(cli_net, fifo_carries_shell_writers_to_ipckit_and_ipckit_to_cat) {
  const std::string fifo = (dir() / "f").string();
  ASSERT_EQ(run_process({cli_path(), "fifo", "make", fifo}).exit_code, 0);
  EXPECT_EQ(std::filesystem::status(fifo).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  // ipckit reads, the shell writes.
  peer_process reader({cli_path(), "fifo", "read", fifo});
  ASSERT_EQ(run_process({"sh", "-c", "echo 'from the shell' > \"$0\"", fifo}).exit_code, 0);
  EXPECT_EQ(reader.read_line(10s), "from the shell");
  EXPECT_EQ(reader.wait(10s), 0);

  // ipckit writes before any reader exists: it waits, then cat reads.
  peer_process writer({cli_path(), "fifo", "write", fifo});
  writer.write("waited for a reader\n");
  writer.close_stdin();
  auto cat = run_process({"cat", fifo});
  EXPECT_EQ(cat.out, "waited for a reader\n");
  EXPECT_EQ(writer.wait(10s), 0);
}

TEST_F(cli_net, fifo_write_times_out_without_a_reader_and_refuses_a_plain_file) {
  const std::string fifo = (dir() / "lonely").string();
  ASSERT_EQ(run_process({cli_path(), "fifo", "make", fifo}).exit_code, 0);
  auto timed_out = run_process({cli_path(), "fifo", "write", "--timeout", "200ms", fifo}, "x");
  EXPECT_EQ(timed_out.exit_code, 1);
  EXPECT_THAT(timed_out.err, HasSubstr("i/o timeout"));
  const std::string file = (dir() / "plain").string();
  ASSERT_EQ(run_process({"touch", file}).exit_code, 0);
  auto refused = run_process({cli_path(), "fifo", "make", file});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_FALSE(refused.err.empty());
}

}  // namespace

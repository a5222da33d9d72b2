// `ipckit dial`, `ipckit listen` and `ipckit fifo` as a user runs them, against each other,
// python3 and the shell.
#include "test_support.hpp"

#include <gmock/gmock.h>

#include <csignal>
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
      {"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"tcp", "127.0.0.1:0"}, {"unix", "DIR/s.sock"},
      // packets: one line, one datagram
      {"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}, {"udp", "127.0.0.1:0"},
      {"unixpacket", "DIR/p.sock"}, {"unixgram", "DIR/g.sock"},
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

// A peer the policy refuses is closed before the relay sees it, with a line on stderr
// naming it; the listener goes on accepting.
TEST_F(cli_net, listen_refuses_a_peer_outside_its_uid_policy_and_says_who) {
  const std::string path = (dir() / "policy.sock").string();
  std::unique_ptr<peer_process> listener;
  ASSERT_EQ(start_listener(listener, {"--allow-uid", "4000000000,4000000001", "unix", path}), path);
  auto client = run_process({"python3", "-c",
                             "import os,socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                             "print(os.getpid()); sys.stdout.flush()\n"
                             "try: s.sendall(b'secret\\n'); print(len(s.recv(100)))\n"
                             "except (BrokenPipeError, ConnectionResetError): print(0)\n",
                             path});
  ASSERT_EQ(client.exit_code, 0) << client.err;
  const auto pid = client.out.substr(0, client.out.find('\n'));
  EXPECT_EQ(client.out, pid + "\n0\n") << "the refused peer read something";
  EXPECT_EQ(listener->read_line(10s), "refused peer pid " + pid + " uid " + std::to_string(::getuid()) +
                                          " gid " + std::to_string(::getgid()));
  ::kill(listener->pid(), SIGTERM);
  EXPECT_EQ(listener->wait(10s), 0);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(cli_net, listen_in_a_private_directory_lets_the_same_uid_in) {
  const auto private_dir = dir() / "private";
  const std::string path = (private_dir / "s.sock").string();
  std::unique_ptr<peer_process> listener;
  ASSERT_EQ(start_listener(listener, {"--private-dir", "--same-uid", "unix", path}), path);
  EXPECT_EQ(std::filesystem::status(private_dir).permissions(), std::filesystem::perms::owner_all);
  auto client = run_process({"python3", "-c",
                             "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                             "s.sendall(b'same uid\\n'); s.close()",
                             path});
  ASSERT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(listener->read_line(10s), "same uid");
  EXPECT_EQ(listener->wait(10s), 0);
}

TEST_F(cli_net, listen_says_which_flag_has_a_bad_id_list) {
  auto run = run_process({cli_path(), "listen", "--allow-gid", "12,x", "unix", (dir() / "x").string()});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--allow-gid: not a list of numeric ids: 12,x"));
}

// The server answers only once it has read EOF: dial must half-close at stdin EOF and
// still print what comes back.
TEST_F(cli_net, dial_half_closes_at_stdin_eof_and_still_reads_the_reply) {
  const std::string path = (dir() / "half.sock").string();
  peer_process server({"python3", "-c",
                       "import socket,sys\n"
                       "l=socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen()\n"
                       "print('ready', flush=True)\n"
                       "c,_=l.accept(); data=b''\n"
                       "while True:\n"
                       "  b=c.recv(4096)\n"
                       "  if not b: break\n"
                       "  data+=b\n"
                       "c.sendall(b'got %d bytes after EOF\\n' % len(data)); c.close()\n",
                       path});
  ASSERT_EQ(server.read_line(), "ready");
  auto dialed = run_process({cli_path(), "dial", "unix", path}, "hello\nworld\n", 20s);
  EXPECT_EQ(dialed.exit_code, 0) << dialed.err;
  EXPECT_EQ(dialed.out, "got 12 bytes after EOF\n");
  EXPECT_EQ(server.wait(), 0);
}

// stdin's open file description is shared with the shell and whatever runs after the
// command: dial reads it on the loop (O_NONBLOCK) and must leave it blocking again.
TEST_F(cli_net, dial_leaves_a_shared_stdin_blocking_when_it_is_done) {
  const std::string path = (dir() / "shared.sock").string();
  peer_process server({"python3", "-c",
                       "import socket,sys\n"
                       "l=socket.socket(socket.AF_UNIX); l.bind(sys.argv[1]); l.listen()\n"
                       "print('ready', flush=True)\n"
                       "c,_=l.accept()\n"
                       "while c.recv(4096): pass\n"
                       "c.close()\n",
                       path});
  ASSERT_EQ(server.read_line(), "ready");
  auto shell = run_process({"sh", "-c",
                            "\"$0\" dial unix \"$1\" && "
                            "python3 -c 'import os; print(\"stdin blocking:\", os.get_blocking(0))'",
                            cli_path(), path},
                           "hello\n", 20s);
  EXPECT_EQ(shell.exit_code, 0) << shell.err;
  EXPECT_EQ(shell.out, "stdin blocking: True\n");
  EXPECT_EQ(server.wait(), 0);
}

// On a packet network each stdin line is one datagram (without its newline) and each
// datagram received is printed as one line.
TEST_F(cli_net, dial_sends_one_datagram_per_line_and_prints_one_line_per_datagram) {
  peer_process server({"python3", "-c",
                       "import socket\n"
                       "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1',0))\n"
                       "print(s.getsockname()[1], flush=True)\n"
                       "for _ in range(3):\n"
                       "  d,a=s.recvfrom(65536)\n"
                       "  s.sendto(b'%d bytes: %s' % (len(d), d), a)\n"});
  const auto port = server.read_line();
  ASSERT_TRUE(port);
  auto dialed = run_process({cli_path(), "dial", "--linger", "500ms", "udp4", "127.0.0.1:" + *port},
                            "one\ntwo two\n\n", 20s);
  EXPECT_EQ(dialed.exit_code, 0) << dialed.err;
  EXPECT_EQ(dialed.out, "3 bytes: one\n7 bytes: two two\n0 bytes: \n");
  EXPECT_EQ(server.wait(), 0);
}

// listen on a packet network prints each datagram as one line, and stops cleanly at SIGTERM.
TEST_F(cli_net, listen_prints_one_line_per_datagram) {
  std::unique_ptr<peer_process> listener;
  const std::string address = start_listener(listener, {"udp4", "127.0.0.1:0"});
  ASSERT_FALSE(address.empty());
  const auto colon = address.rfind(':');
  auto client = run_process({"python3", "-c",
                             "import socket,sys\n"
                             "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                             "for d in (b'first', b'second datagram'): s.sendto(d, ('127.0.0.1', int(sys.argv[1])))\n",
                             address.substr(colon + 1)});
  ASSERT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(listener->read_line(10s), "first");
  EXPECT_EQ(listener->read_line(10s), "second datagram");
  listener->kill(SIGTERM);
  EXPECT_EQ(listener->wait(10s), 0);
}

TEST_F(cli_net, listen_keep_serves_connections_one_after_another) {
  const std::string path = (dir() / "keep.sock").string();
  std::unique_ptr<peer_process> listener;
  ASSERT_EQ(start_listener(listener, {"--keep", "--echo", "unix", path}), path);
  for (int i = 0; i < 3; ++i) {
    const std::string line = "connection " + std::to_string(i) + "\n";
    auto dialed = run_process({cli_path(), "dial", "unix", path}, line, 20s);
    EXPECT_EQ(dialed.exit_code, 0) << i << ": " << dialed.err;
    EXPECT_EQ(dialed.out, line);
  }
  EXPECT_EQ(listener->wait(100ms), std::nullopt) << "--keep listener exited";
  listener->kill(SIGTERM);
  EXPECT_EQ(listener->wait(10s), 0);
  EXPECT_FALSE(std::filesystem::exists(path)) << "the socket file outlived the listener";
}

TEST_F(cli_net, fifo_read_keep_goes_on_as_writers_come_and_go) {
  const std::string fifo = (dir() / "keep").string();
  ASSERT_EQ(run_process({cli_path(), "fifo", "make", fifo}).exit_code, 0);
  peer_process reader({cli_path(), "fifo", "read", "--keep", fifo});
  for (int i = 0; i < 3; ++i) {
    const std::string line = "writer " + std::to_string(i);
    ASSERT_EQ(run_process({"sh", "-c", "echo \"$1\" > \"$0\"", fifo, line}).exit_code, 0);
    EXPECT_EQ(reader.read_line(10s), line);
  }
  // Every writer has gone: a plain reader would have ended at EOF, this one waits on.
  EXPECT_EQ(reader.wait(100ms), std::nullopt) << "fifo read --keep ended when a writer left";
  auto late = run_process({cli_path(), "fifo", "write", "--timeout", "5s", fifo}, "late writer\n");
  EXPECT_EQ(late.exit_code, 0) << late.err;
  EXPECT_EQ(reader.read_line(10s), "late writer");
  reader.kill(SIGTERM);
  EXPECT_EQ(reader.wait(10s), 128 + SIGTERM);
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

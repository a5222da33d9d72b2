// A bounded soak: mixed traffic over every transport at once (pipe, FIFO, unix stream,
// datagram and seqpacket, tcp4 and udp4 on 127.0.0.1, POSIX mq, json_channel) between
// this process and helper children, while a child sends SIGUSR1 and a realtime signal
// to this process (received through ipckit::signal::notifier). Each flow sends a message,
// waits for its echo and checks it byte for byte; at the end the child reports what it
// received. Passes with zero loss on both sides and the fd and child counts back where
// they started.
//
// IPCKIT_SOAK_SECONDS sets the traffic time (default 30); the test always stops by itself.
#include "soak_channels.hpp"
#include "test_support.hpp"

#include <ipckit/signal.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>
#include <unistd.h>

namespace {

namespace asio = boost::asio;
namespace net = ipckit::net;
using ipckit::error_code;
using ipckit::test::peer_process;
using ipckit::test::run_until;
using ipckit::test::soak_channel;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::chrono::seconds soak_duration() {
  const char* text = std::getenv("IPCKIT_SOAK_SECONDS");
  const long seconds = text ? std::strtol(text, nullptr, 10) : 0;
  return std::chrono::seconds(seconds > 0 ? seconds : 30);
}

/// Children of this process, from /proc (so a child nobody reaped is counted too).
std::size_t child_count() {
  std::size_t count = 0;
  const std::string self = std::to_string(::getpid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    std::istringstream after(line.substr(line.rfind(')') + 1));
    std::string state, ppid;
    after >> state >> ppid;
    if (ppid == self) ++count;
  }
  return count;
}

/// "3 -> pipe:[1234]" for each open descriptor: what a leak message shows.
std::string fd_list() {
  std::string list;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    list += entry.path().filename().string() + " -> " + std::filesystem::read_symlink(entry.path(), ec).string() + "\n";
  }
  return list;
}

ipckit::unique_fd dup_cloexec(int fd) { return ipckit::unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

/// One transport's traffic: send a message, await its echo, compare, repeat until the
/// deadline; then "END", and the child's "COUNT MESSAGES BYTES".
class flow {
 public:
  struct limits {
    std::size_t max_size;
    bool text;  ///< printable bytes only (JSON strings)
  };

  /// `deadline` is read when the flow runs: it is set once every transport is up.
  flow(std::string name, std::unique_ptr<soak_channel> channel, limits l, const clock_type::time_point& deadline,
       unsigned seed)
      : name_(std::move(name)), channel_(std::move(channel)), limits_(l), deadline_(deadline), random_(seed) {}

  void start() { next(); }

  const std::string& name() const { return name_; }
  bool done() const { return done_; }
  const std::string& error() const { return error_; }
  std::uint64_t sent = 0, sent_bytes = 0, echoed = 0, echoed_bytes = 0;
  std::uint64_t lost = 0, late = 0, mismatched = 0;
  std::uint64_t child_messages = 0, child_bytes = 0;

 private:
  std::string make_message() {
    std::string m = "SEQ " + std::to_string(seq_) + " ";
    const std::size_t size = std::uniform_int_distribution<std::size_t>(m.size(), limits_.max_size)(random_);
    for (std::size_t i = m.size(); i < size; ++i)
      m.push_back(limits_.text ? static_cast<char>('a' + (seq_ * 31 + i) % 26)
                               : static_cast<char>((seq_ * 131 + i * 7) & 0xff));
    return m;
  }

  static std::optional<std::uint64_t> seq_of(const std::string& m) {
    if (!m.starts_with("SEQ ")) return std::nullopt;
    return std::strtoull(m.c_str() + 4, nullptr, 10);
  }

  void next() {
    if (clock_type::now() >= deadline_) return finish();
    message_ = make_message();
    channel_->async_send(message_, [this](error_code ec) {
      if (ec) return fail("send", ec);
      ++sent;
      sent_bytes += message_.size();
      await_echo();
    });
  }

  void await_echo() {
    channel_->async_receive([this](error_code ec, std::string got) {
      if (ec == ipckit::errc::timeout) {  // udp: the datagram or its echo is gone
        ++lost;
        ++seq_;
        return next();
      }
      if (ec) return fail("receive", ec);
      if (const auto seq = seq_of(got); seq && *seq < seq_) {
        ++late;  // the echo of one counted lost: not counted twice
        return await_echo();
      }
      if (got == message_) {
        ++echoed;
        echoed_bytes += got.size();
      } else {
        ++mismatched;
      }
      ++seq_;
      next();
    });
  }

  void finish() {
    message_ = "END";
    channel_->async_send(message_, [this](error_code ec) {
      if (ec) return fail("send END", ec);
      await_count();
    });
  }

  void await_count() {
    channel_->async_receive([this](error_code ec, std::string got) {
      if (ec) return fail("receive COUNT", ec);
      if (seq_of(got)) {
        ++late;
        return await_count();
      }
      std::istringstream in(got);
      std::string word;
      if (!(in >> word >> child_messages >> child_bytes) || word != "COUNT") return fail("COUNT", {}, got);
      done_ = true;
    });
  }

  void fail(const char* what, error_code ec, const std::string& got = {}) {
    error_ = std::string(what) + ": " + (ec ? ec.message() : "unexpected '" + got.substr(0, 40) + "'");
    done_ = true;
  }

  std::string name_;
  std::unique_ptr<soak_channel> channel_;
  limits limits_;
  const clock_type::time_point& deadline_;
  std::mt19937_64 random_;
  std::uint64_t seq_ = 0;
  std::string message_;
  bool done_ = false;
  std::string error_;
};

/// The signal source child: one realtime signal (value 0, 1, 2 …) and one SIGUSR1 per
/// byte we write it; we write the next byte when the previous realtime signal arrived,
/// until the deadline, then close its stdin and it says how many it sent.
class signal_traffic {
 public:
  signal_traffic(asio::io_context& io, clock_type::time_point deadline)
      : realtime_signal_(ipckit::signal::parse("RTMIN+1")),
        notifier_(io, {realtime_signal_, SIGUSR1}),
        source_({ipckit::test::helper_path(), "signal-source", "RTMIN+1", "USR1"}),
        deadline_(deadline) {
    notifier_.on_signal([this](const ipckit::signal::info& got) {
      if (got.number == SIGUSR1) {
        ++usr1;
        return;
      }
      if (got.value != std::optional<int>(static_cast<int>(realtime))) ++out_of_order;
      ++realtime;
      if (clock_type::now() < deadline_) {
        source_.write("x");
      } else if (!stdin_closed_) {
        source_.close_stdin();
        stdin_closed_ = true;
      }
    });
    source_.write("x");
  }

  bool done() const { return stdin_closed_; }
  /// The child's own count, once done(): "sent N".
  std::optional<std::uint64_t> child_sent() {
    const auto line = source_.read_line();
    if (!line || !line->starts_with("sent ")) return std::nullopt;
    return std::stoull(line->substr(5));
  }
  std::optional<int> wait() { return source_.wait(); }
  std::size_t dropped() const { return notifier_.dropped(); }

  std::uint64_t realtime = 0, usr1 = 0, out_of_order = 0;

 private:
  int realtime_signal_;
  ipckit::signal::notifier notifier_;
  peer_process source_;
  clock_type::time_point deadline_;
  bool stdin_closed_ = false;
};

/// Unlinks POSIX message queues at scope exit, whatever happened.
struct queue_names {
  std::vector<std::string> names;
  ~queue_names() {
    for (const auto& name : names) {
      error_code ignored;
      ipckit::message_queue::unlink(name, ignored);
    }
  }
};

class soak_test : public ipckit::test::temp_dir_test {
 protected:
  /// Accepts one connection within 10 s (the child dials it).
  std::optional<net::conn> accept_one(net::listener& l) {
    std::optional<net::conn> accepted;
    l.async_accept([&](error_code ec, net::conn c) {
      if (!ec) accepted.emplace(std::move(c));
    });
    run_until(io, [&] { return accepted.has_value(); });
    return accepted;
  }

  std::vector<std::string> helper(std::vector<std::string> args) {
    args.insert(args.begin(), ipckit::test::helper_path());
    return args;
  }

  asio::io_context io;
  net::executor_type ex = io.get_executor();
};

TEST_F(soak_test, mixed_traffic_on_every_transport_with_signals_loses_nothing_and_leaks_nothing) {
  // What is made once per process is not a leak: the loop's reactor, and the signal
  // module's reader (a signalfd, a pipe and a thread, made on the first subscription and
  // kept). Both exist before the counts are taken; anything made per notifier, per
  // connection or per child must be gone again at the end.
  asio::steady_timer warm(io, 1ms);
  warm.async_wait([](error_code) {});
  io.run();
  io.restart();
  { ipckit::signal::notifier first(io, {SIGUSR1}); }
  const std::size_t fds_before = ipckit::test::open_fd_count();
  const std::string fds_at_start = fd_list();
  const std::size_t children_before = child_count();
  const auto duration = soak_duration();
  {
    queue_names queues;
    std::vector<std::unique_ptr<peer_process>> peers;
    std::vector<std::unique_ptr<flow>> flows;
    clock_type::time_point deadline{};  // set when every transport is up
    auto add = [&](std::string name, std::unique_ptr<soak_channel> channel, flow::limits l) {
      flows.push_back(std::make_unique<flow>(std::move(name), std::move(channel), l, deadline,
                                             static_cast<unsigned>(1985 + flows.size())));
    };
    auto start = [&](std::vector<std::string> args) -> peer_process& {
      peers.push_back(std::make_unique<peer_process>(helper(std::move(args))));
      return *peers.back();
    };

    {  // pipe: the child's stdin and stdout
      peer_process& child = start({"soak-echo", "pipe"});
      ipckit::test::pipe_duplex duplex{ipckit::pipe_writer(ex, dup_cloexec(child.stdin_fd())),
                                       ipckit::pipe_reader(ex, dup_cloexec(child.stdout_fd()))};
      child.close_stdin();
      add("pipe", std::make_unique<ipckit::test::framed_channel<ipckit::test::pipe_duplex>>(std::move(duplex)),
          {65536, false});
    }
    {  // FIFO: one each way
      const auto to_child = dir() / "to-child.fifo", from_child = dir() / "from-child.fifo";
      ipckit::make_fifo(to_child);
      ipckit::make_fifo(from_child);
      ipckit::pipe_reader in = ipckit::open_fifo_reader(ex, from_child);
      start({"soak-echo", "fifo", to_child.string(), from_child.string()});
      ipckit::pipe_writer out = ipckit::open_fifo_writer(ex, to_child, 10s);
      add("fifo", std::make_unique<ipckit::test::framed_channel<ipckit::test::pipe_duplex>>(
                      ipckit::test::pipe_duplex{std::move(out), std::move(in)}),
          {65536, false});
    }
    struct listened {
      const char* name;
      const char* net;
      std::string address;
      const char* mode;
    };
    for (const listened& l : {listened{"unix", "unix", (dir() / "stream.sock").string(), "stream"},
                              listened{"unixpacket", "unixpacket", (dir() / "packet.sock").string(), "packet"},
                              listened{"tcp4", "tcp4", "127.0.0.1:0", "stream"},
                              listened{"json", "unix", (dir() / "json.sock").string(), "json"}}) {
      net::listener listener = net::listen(ex, l.net, l.address);
      start({"soak-echo", l.mode, l.net, listener.addr().to_string()});
      auto c = accept_one(listener);
      ASSERT_TRUE(c) << l.name << ": the child did not dial";
      const std::string mode = l.mode;
      if (mode == "stream")
        add(l.name, std::make_unique<ipckit::test::framed_channel<net::conn>>(std::move(*c)), {65536, false});
      else if (mode == "packet")
        add(l.name, std::make_unique<ipckit::test::datagram_channel>(std::move(*c)), {16384, false});
      else
        add(l.name, std::make_unique<ipckit::test::json_message_channel>(std::move(*c)), {16384, true});
    }
    {  // unixgram: the child binds a path and echoes to ours
      const std::string child_path = (dir() / "gram-child.sock").string();
      peer_process& child = start({"soak-echo", "unixgram", child_path});
      const auto ready = child.read_line();
      ASSERT_TRUE(ready && ready->starts_with("ready")) << ready.value_or("<nothing>");
      net::dialer d;
      d.local_address = (dir() / "gram-test.sock").string();
      add("unixgram", std::make_unique<ipckit::test::datagram_channel>(d.dial(ex, "unixgram", child_path)),
          {16384, false});
    }
    {  // udp4 on 127.0.0.1: an echo missing after 2 s counts as lost
      peer_process& child = start({"soak-echo", "udp4"});
      const auto ready = child.read_line();
      ASSERT_TRUE(ready && ready->starts_with("ready ")) << ready.value_or("<nothing>");
      add("udp4", std::make_unique<ipckit::test::datagram_channel>(net::dial(ex, "udp4", ready->substr(6)), 2000ms),
          {8192, false});
    }
    {  // POSIX message queues, one each way
      const std::string to_child = ipckit::test::unique_ipc_name("soak-in");
      const std::string from_child = ipckit::test::unique_ipc_name("soak-out");
      ipckit::message_queue out(io), in(io);
      out.create(to_child);
      queues.names.push_back(to_child);
      in.create(from_child);
      queues.names.push_back(from_child);
      start({"soak-echo", "mq", to_child, from_child});
      const long size = in.attributes().message_size;
      add("mq", std::make_unique<ipckit::test::queue_channel>(std::move(out), std::move(in)),
          {static_cast<std::size_t>(size), false});
    }

    deadline = clock_type::now() + duration;
    signal_traffic signals(io, deadline);
    // The count that must come back down at the end sees every child now.
    EXPECT_EQ(child_count(), children_before + peers.size() + 1);
    for (auto& f : flows) f->start();
    const bool finished = run_until(
        io,
        [&] {
          for (const auto& f : flows)
            if (!f->done()) return false;
          return signals.done();
        },
        duration + 60s);
    EXPECT_TRUE(finished) << "the soak did not end within 60 s of its deadline";

    std::cout << "soak for " << duration.count() << " s:\n"
              << std::left << std::setw(12) << "transport" << std::right << std::setw(10) << "messages"
              << std::setw(14) << "bytes" << std::setw(8) << "lost" << std::setw(8) << "late" << '\n';
    for (const auto& f : flows) {
      std::cout << std::left << std::setw(12) << f->name() << std::right << std::setw(10) << f->sent
                << std::setw(14) << f->sent_bytes << std::setw(8) << f->lost << std::setw(8) << f->late
                << '\n';
      SCOPED_TRACE(f->name());
      EXPECT_TRUE(f->done());
      EXPECT_EQ(f->error(), "");
      EXPECT_GT(f->sent, 0u);
      EXPECT_EQ(f->lost, 0u) << "echoes that never came back";
      EXPECT_EQ(f->mismatched, 0u) << "echoes that differ from what was sent";
      EXPECT_EQ(f->echoed, f->sent);
      EXPECT_EQ(f->echoed_bytes, f->sent_bytes);
      EXPECT_EQ(f->child_messages, f->sent) << "the child's count";
      EXPECT_EQ(f->child_bytes, f->sent_bytes) << "the child's count";
    }
    const auto sent_signals = signals.child_sent();
    std::cout << "signals: " << signals.realtime << " RTMIN+1 (child sent " << sent_signals.value_or(0)
              << "), " << signals.usr1 << " SIGUSR1 (standard signals coalesce)\n";
    ASSERT_TRUE(sent_signals.has_value());
    EXPECT_GT(signals.realtime, 0u);
    EXPECT_EQ(signals.realtime, *sent_signals) << "realtime signals are queued: none may be lost";
    EXPECT_EQ(signals.out_of_order, 0u);
    EXPECT_EQ(signals.dropped(), 0u);
    EXPECT_GE(signals.usr1, 1u);
    EXPECT_LE(signals.usr1, *sent_signals);
    EXPECT_EQ(signals.wait(), 0);
    for (auto& peer : peers) EXPECT_EQ(peer->wait(), 0) << "an echo child failed (its stderr says why)";
    flows.clear();
    peers.clear();
  }
  // After a failure that left operations pending, their handlers would refer to the
  // flows just destroyed: they are left for the io_context to destroy, never run.
  if (!::testing::Test::HasFailure()) {
    io.restart();
    io.poll();
  }
  EXPECT_EQ(ipckit::test::open_fd_count(), fds_before)
      << "descriptors leaked; at the start:\n" << fds_at_start << "now:\n" << fd_list();
  EXPECT_EQ(child_count(), children_before) << "children left behind";
}

}  // namespace

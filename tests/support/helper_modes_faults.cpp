// Helper child mode for the fault tests: a peer driven line by line from the test.
// `ipckit_helper script` reads one command per stdin line and answers each with one
// stdout line, "ok [RESULT]" or "error TEXT", so a test can put the peer exactly where
// the fault needs it (holding a lock, half-way through a message, with a full queue)
// and then kill it. Raw system calls throughout: the peer must not depend on the code
// under test.
#include "helper_child.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <mqueue.h>
#include <optional>
#include <netinet/in.h>
#include <semaphore.h>
#include <sstream>
#include <string>
#include <sys/file.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace ipckit::test {
namespace {

struct failure {
  std::string what;
};

[[noreturn]] void fail(const std::string& what) { throw failure{what + ": " + std::strerror(errno)}; }

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write");
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// The bytes the tests send and check: a repeating pattern that catches lost, doubled
// or reordered chunks, not just a wrong count.
char pattern_byte(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 251) % 26); }

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  return a;
}

class script {
 public:
  int run() {
    for (std::string line; std::getline(std::cin, line);) {
      std::istringstream words(line);
      std::string verb;
      words >> verb;
      try {
        const std::string result = execute(verb, words);
        std::cout << "ok" << (result.empty() ? "" : " ") << result << std::endl;
      } catch (const failure& f) {
        std::cout << "error " << f.what << std::endl;
      }
      if (exit_code_) return *exit_code_;
    }
    return 0;
  }

 private:
  std::string execute(const std::string& verb, std::istringstream& words) {
    if (verb == "dial-unix") return dial_unix(word(words));
    if (verb == "dial-tcp") return dial_tcp(std::stoi(word(words)));
    if (verb == "listen-tcp") return listen_tcp(std::stoi(word(words)));
    if (verb == "accept") return accept_one();
    if (verb == "send") return send_text(rest(words));
    if (verb == "send-pattern") return send_pattern(std::stoul(word(words)));
    if (verb == "recv-pattern") return recv_pattern(std::stoul(word(words)));
    if (verb == "reset") return reset();
    if (verb == "close") return close_conn();
    if (verb == "frame-half") return frame_half(rest(words));
    if (verb == "fifo-write") {
      const std::string path = word(words);
      return fifo_write(path, rest(words));
    }
    if (verb == "fifo-read-pattern") {
      const std::string path = word(words);
      return fifo_read_pattern(path, std::stoul(word(words)));
    }
    if (verb == "fifo-hold") return fifo_hold(word(words));
    if (verb == "mq-send") {
      const std::string name = word(words);
      return mq_send_text(name, rest(words));
    }
    if (verb == "mq-fill") return mq_fill(word(words));
    if (verb == "mq-receive") return mq_receive_text(word(words));
    if (verb == "sem-post") return sem_change(word(words), true);
    if (verb == "sem-take") return sem_change(word(words), false);
    if (verb == "sysv-post") return sysv_change(std::stoi(word(words)), +1, 0);
    if (verb == "sysv-take") return sysv_change(std::stoi(word(words)), -1, SEM_UNDO);
    if (verb == "eventfd-post") return eventfd_post();
    if (verb == "lock") return lock(word(words));
    if (verb == "unlock") return unlock();
    if (verb == "exit") {
      exit_code_ = std::stoi(word(words));
      return "";
    }
    errno = EINVAL;
    fail("unknown command " + verb);
  }

  static std::string word(std::istringstream& words) {
    std::string w;
    if (!(words >> w)) {
      errno = EINVAL;
      fail("missing argument");
    }
    return w;
  }
  static std::string rest(std::istringstream& words) {
    std::string text;
    std::getline(words >> std::ws, text);
    return text;
  }

  int conn() const {
    if (conn_ < 0) {
      errno = ENOTCONN;
      fail("no connection");
    }
    return conn_;
  }
  void replace_conn(int fd) {
    if (conn_ >= 0) ::close(conn_);
    conn_ = fd;
  }

  std::string dial_unix(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const sockaddr_un a = unix_address(path);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) fail("dial " + path);
    replace_conn(fd);
    return "";
  }

  std::string dial_tcp(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) fail("dial");
    replace_conn(fd);
    return "";
  }

  // Listens on 127.0.0.1 with `backlog` and never accepts by itself: the accept queue
  // fills, and a further connect waits in SYN retransmission until `accept` makes room.
  std::string listen_tcp(int backlog) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof a;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener_, backlog) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &size) != 0)
      fail("listen");
    return std::to_string(ntohs(a.sin_port));
  }

  std::string accept_one() {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) fail("accept");
    replace_conn(fd);
    return "";
  }

  std::string send_text(const std::string& text) {
    write_all(conn(), text.data(), text.size());
    return "";
  }

  std::string send_pattern(std::size_t size) {
    std::vector<char> data(size);
    for (std::size_t i = 0; i < size; ++i) data[i] = pattern_byte(i);
    write_all(conn(), data.data(), data.size());
    return "";
  }

  // Reads exactly `size` bytes and answers how many matched the pattern.
  static std::string read_pattern(int fd, std::size_t size) {
    std::size_t got = 0, matching = 0;
    char buffer[65536];
    while (got < size) {
      const ssize_t n = ::read(fd, buffer, std::min(sizeof buffer, size - got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("read");
      if (n == 0) break;
      for (ssize_t i = 0; i < n; ++i) matching += buffer[i] == pattern_byte(got + static_cast<std::size_t>(i));
      got += static_cast<std::size_t>(n);
    }
    return std::to_string(got) + " " + std::to_string(matching);
  }

  std::string recv_pattern(std::size_t size) { return read_pattern(conn(), size); }

  // Closes with SO_LINGER 0: the kernel sends RST instead of FIN.
  std::string reset() {
    const linger abort_close{1, 0};
    if (::setsockopt(conn(), SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close) != 0) fail("SO_LINGER");
    replace_conn(-1);
    return "";
  }

  std::string close_conn() {
    replace_conn(-1);
    return "";
  }

  // The 4-byte big-endian length of `json`, then only the first half of it.
  std::string frame_half(const std::string& json) {
    const std::uint32_t length = htonl(static_cast<std::uint32_t>(json.size()));
    std::string frame(reinterpret_cast<const char*>(&length), sizeof length);
    frame += json.substr(0, json.size() / 2);
    write_all(conn(), frame.data(), frame.size());
    return std::to_string(frame.size());
  }

  static std::string fifo_write(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    write_all(fd, text.data(), text.size());
    ::close(fd);
    return "";
  }

  static std::string fifo_read_pattern(const std::string& path, std::size_t size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open " + path);
    std::string result = read_pattern(fd, size);
    ::close(fd);
    return result;
  }

  // Opens the FIFO for reading (waiting for a writer) and keeps it open, unread.
  std::string fifo_hold(const std::string& path) {
    held_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (held_ < 0) fail("open " + path);
    return "";
  }

  static std::string mq_send_text(const std::string& name, const std::string& text) {
    const mqd_t q = ::mq_open(name.c_str(), O_WRONLY | O_CLOEXEC);
    if (q < 0) fail("mq_open " + name);
    const int sent = ::mq_send(q, text.data(), text.size(), 0);
    const int saved = errno;
    ::mq_close(q);
    errno = saved;
    if (sent != 0) fail("mq_send");
    return "";
  }

  // Sends "fill N" messages until the queue is full; answers how many went in.
  static std::string mq_fill(const std::string& name) {
    const mqd_t q = ::mq_open(name.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (q < 0) fail("mq_open " + name);
    int sent = 0;
    for (;; ++sent) {
      const std::string text = "fill " + std::to_string(sent);
      if (::mq_send(q, text.data(), text.size(), 0) != 0) break;
    }
    const int saved = errno;
    ::mq_close(q);
    errno = saved;
    if (errno != EAGAIN) fail("mq_send");
    return std::to_string(sent);
  }

  // Receives one message (waiting for it) and answers its text.
  static std::string mq_receive_text(const std::string& name) {
    const mqd_t q = ::mq_open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (q < 0) fail("mq_open " + name);
    mq_attr attributes{};
    ssize_t n = -1;
    std::vector<char> buffer;
    if (::mq_getattr(q, &attributes) == 0) {
      buffer.resize(static_cast<std::size_t>(attributes.mq_msgsize));
      while ((n = ::mq_receive(q, buffer.data(), buffer.size(), nullptr)) < 0 && errno == EINTR) {
      }
    }
    const int saved = errno;
    ::mq_close(q);
    errno = saved;
    if (n < 0) fail("mq_receive");
    return std::string(buffer.data(), static_cast<std::size_t>(n));
  }

  // One unit on the eventfd the peer inherited as fd 3 (script_peer's fd3).
  static std::string eventfd_post() {
    const std::uint64_t unit = 1;
    ssize_t n;
    while ((n = ::write(3, &unit, sizeof unit)) < 0 && errno == EINTR) {
    }
    if (n != sizeof unit) fail("write eventfd 3");
    return "";
  }

  static std::string sem_change(const std::string& name, bool post) {
    sem_t* sem = ::sem_open(name.c_str(), 0);
    if (sem == SEM_FAILED) fail("sem_open " + name);
    int result;
    while ((result = post ? ::sem_post(sem) : ::sem_wait(sem)) != 0 && errno == EINTR) {
    }
    const int saved = errno;
    ::sem_close(sem);  // a unit taken stays taken: named semaphores have no undo
    errno = saved;
    if (result != 0) fail(post ? "sem_post" : "sem_wait");
    return "";
  }

  static std::string sysv_change(int id, short delta, short flags) {
    sembuf op{0, delta, flags};
    int result;
    while ((result = ::semop(id, &op, 1)) != 0 && errno == EINTR) {
    }
    if (result != 0) fail("semop");
    return "";
  }

  std::string lock(const std::string& path) {
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX) != 0) fail("flock " + path);
    return "";
  }

  std::string unlock() {
    if (::flock(lock_fd_, LOCK_UN) != 0) fail("flock LOCK_UN");
    return "";
  }

  int conn_ = -1;
  int listener_ = -1;
  int lock_fd_ = -1;
  int held_ = -1;
  std::optional<int> exit_code_;
};

const helper_mode_registration script_mode{
    {"script", "script  (runs commands from stdin, one per line: dial-unix PATH, send TEXT, reset, "
               "frame-half JSON, fifo-hold PATH, mq-fill NAME, mq-receive NAME, sem-take NAME, "
               "eventfd-post, lock PATH … answers 'ok'/'error')",
     [](std::span<const std::string>) { return script().run(); }}};

}  // namespace
}  // namespace ipckit::test

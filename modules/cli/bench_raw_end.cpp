// The baseline ends: what a program without ipckit would write.
#include "bench_ends.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <system_error>
#include <unistd.h>

namespace ipckit::cli::bench {
namespace {

void set_non_blocking(int fd, framing kind, bool on) {
  if (kind == framing::mq) {
    mq_attr attributes{};
    attributes.mq_flags = on ? O_NONBLOCK : 0;
    if (::mq_setattr(fd, &attributes, nullptr) != 0) fail_errno("mq_setattr");
    return;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) != 0)
    fail_errno("fcntl O_NONBLOCK");
}

}  // namespace

void fail_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

raw_end::raw_end(int in, int out, framing kind, bool use_epoll) : in_(in), out_(out), kind_(kind) {
  set_non_blocking(in_, kind_, use_epoll);
  if (out_ != in_) set_non_blocking(out_, kind_, use_epoll);
  if (!use_epoll) return;
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) fail_errno("epoll_create1");
  // Readable only: writability is asked for once a write first says EAGAIN (as Asio
  // does), so that the peer draining our writes does not wake us for nothing.
  epoll_event in_event{};
  in_event.events = EPOLLIN | EPOLLET;
  in_event.data.fd = in_;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, in_, &in_event) != 0) fail_errno("epoll_ctl");
}

void raw_end::watch_writable() {
  if (watching_out_) return;
  watching_out_ = true;
  epoll_event out_event{};
  out_event.events = EPOLLOUT | EPOLLET | (out_ == in_ ? EPOLLIN : 0u);
  out_event.data.fd = out_;
  if (::epoll_ctl(epoll_, out_ == in_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, out_, &out_event) != 0)
    fail_errno("epoll_ctl");
}

raw_end::~raw_end() {
  if (epoll_ >= 0) ::close(epoll_);
  if (out_ != in_) ::close(out_);
  ::close(in_);
}

long raw_end::send_once(const char* data, std::size_t n) {
  switch (kind_) {
    case framing::mq: return ::mq_send(out_, data, n, 0) == 0 ? static_cast<long>(n) : -1;
    case framing::datagram: return ::send(out_, data, n, MSG_NOSIGNAL);
    case framing::stream:
    case framing::counter: break;
  }
  return ::write(out_, data, n);
}

long raw_end::recv_once(char* buffer, std::size_t cap) {
  if (kind_ == framing::mq) return ::mq_receive(in_, buffer, cap, nullptr);
  return ::read(in_, buffer, cap);
}

// Edge-triggered: any new event may be the one we need, so the caller tries again.
void raw_end::wait() {
  epoll_event events[2];
  while (::epoll_wait(epoll_, events, 2, -1) < 0)
    if (errno != EINTR) fail_errno("epoll_wait");
}

void raw_end::send(const char* data, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const long sent = send_once(data + done, n - done);
    if (sent >= 0) {
      done += static_cast<std::size_t>(sent);
      if (kind_ != framing::stream) return;
    } else if (errno == EAGAIN && epoll_ >= 0) {
      // Registering after EAGAIN could miss the edge: try once more before waiting.
      if (!watching_out_) {
        watch_writable();
        continue;
      }
      wait();
    } else if (errno != EINTR) {
      fail_errno("send");
    }
  }
}

std::size_t raw_end::recv_some(char* buffer, std::size_t cap) {
  for (;;) {
    const long got = recv_once(buffer, cap);
    if (got > 0) return static_cast<std::size_t>(got);
    if (got == 0 && kind_ != framing::datagram) throw std::runtime_error("receive: unexpected EOF");
    if (got == 0) return 0;
    if (errno == EAGAIN && epoll_ >= 0) {
      wait();
    } else if (errno != EINTR) {
      fail_errno("receive");
    }
  }
}

void raw_end::recv(char* buffer, std::size_t n, std::size_t cap) {
  if (kind_ != framing::stream) {
    recv_some(buffer, cap);
    return;
  }
  for (std::size_t done = 0; done < n;) done += recv_some(buffer + done, n - done);
}

}  // namespace ipckit::cli::bench

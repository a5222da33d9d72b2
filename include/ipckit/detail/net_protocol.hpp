// Internals of ipckit/net.hpp: one Asio protocol whose family, type and protocol are
// chosen at run time (so one socket type serves every Go network), and a move-only
// callback for the operations implemented in modules/net. Users never include this.
#pragma once

#include <ipckit/error.hpp>

#include <boost/asio/generic/basic_endpoint.hpp>

#include <memory>
#include <utility>

namespace ipckit::net::detail {

/// Asio's Protocol requirements with run-time values. Asio keys its stream/datagram
/// semantics on type(): SOCK_STREAM reads of 0 bytes are EOF and 0-byte writes are
/// no-ops; for every other type a 0-byte datagram is sent and received as one.
class any_protocol {
 public:
  using endpoint = boost::asio::generic::basic_endpoint<any_protocol>;

  any_protocol(int family, int type, int protocol) noexcept
      : family_(family), type_(type), protocol_(protocol) {}
  /// What generic::basic_endpoint::protocol() needs; the type is not known there.
  any_protocol(int family, int protocol) noexcept : any_protocol(family, 0, protocol) {}

  int family() const noexcept { return family_; }
  int type() const noexcept { return type_; }
  int protocol() const noexcept { return protocol_; }

  friend bool operator==(const any_protocol&, const any_protocol&) = default;

 private:
  int family_;
  int type_;
  int protocol_;
};

/// A move-only std::function<void(Args...)> (C++20 has no std::move_only_function).
template <class... Args>
class callback {
 public:
  callback() = default;
  template <class F>
  explicit callback(F f) : impl_(std::make_unique<holder<F>>(std::move(f))) {}
  void operator()(Args... args) { impl_->call(std::forward<Args>(args)...); }
  explicit operator bool() const noexcept { return static_cast<bool>(impl_); }

 private:
  struct base {
    virtual ~base() = default;
    virtual void call(Args... args) = 0;
  };
  template <class F>
  struct holder : base {
    explicit holder(F f) : fn(std::move(f)) {}
    void call(Args... args) override { fn(std::forward<Args>(args)...); }
    F fn;
  };
  std::unique_ptr<base> impl_;
};

}  // namespace ipckit::net::detail

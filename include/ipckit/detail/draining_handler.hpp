// The handler of an Asio socket operation that ipckit starts (conn, packet_conn),
// wrapped so that its upcall drains as a polled_descriptor
// attempt's does (immediate_completions.hpp): the next operation it starts that finishes
// at once (the reply written, the next message read) runs right after it returns,
// without a turn of the scheduler's reactor in between (docs/performance-findings.md,
// finding 4). Everything else (executor, allocator, cancellation slot, the legacy
// hooks) is the wrapped handler's. Internal: users never include this header.
#pragma once

#include <ipckit/detail/immediate_completions.hpp>

#include <boost/asio/associator.hpp>
#include <boost/asio/defer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_invoke_helpers.hpp>

#include <utility>

namespace ipckit::detail {

template <class Handler>
class draining_handler {
 public:
  explicit draining_handler(Handler handler) : handler_(std::move(handler)) {}

  template <class... Args>
  void operator()(Args&&... args) {
    immediate_drain drain;
    std::move(handler_)(std::forward<Args>(args)...);
    drain.run();
  }

  Handler handler_;
};

template <class Handler>
draining_handler<std::decay_t<Handler>> draining(Handler&& handler) {
  return draining_handler<std::decay_t<Handler>>(std::forward<Handler>(handler));
}

/// Posts a completion that is ready at once (an attempt that did not have to wait). While
/// a drain runs on this thread it is deferred instead: a continuation, which goes to this
/// thread's private queue, where the drain takes it.
template <class Executor, class Handler>
void post_completion(const Executor& ex, Handler&& handler) {
  if (immediate_drain::active()) boost::asio::defer(ex, std::forward<Handler>(handler));
  else boost::asio::post(ex, std::forward<Handler>(handler));
}

// While a drain runs, an operation that finishes at once goes to this thread's private
// queue (where the drain takes it) only if it is a continuation.
template <class Handler>
bool asio_handler_is_continuation(draining_handler<Handler>* h) {
  return immediate_drain::active() || boost_asio_handler_cont_helpers::is_continuation(h->handler_);
}

#if !defined(BOOST_ASIO_NO_DEPRECATED)
// The legacy hooks (a strand's wrap() uses asio_handler_invoke), forwarded as Asio's own
// binders forward them.
template <class Handler>
boost::asio::asio_handler_allocate_is_deprecated asio_handler_allocate(std::size_t size,
                                                                       draining_handler<Handler>* h) {
  return boost_asio_handler_alloc_helpers::allocate(size, h->handler_);
}

template <class Handler>
boost::asio::asio_handler_deallocate_is_deprecated asio_handler_deallocate(void* pointer, std::size_t size,
                                                                           draining_handler<Handler>* h) {
  boost_asio_handler_alloc_helpers::deallocate(pointer, size, h->handler_);
}

template <class Function, class Handler>
boost::asio::asio_handler_invoke_is_deprecated asio_handler_invoke(Function& function,
                                                                   draining_handler<Handler>* h) {
  boost_asio_handler_invoke_helpers::invoke(function, h->handler_);
}

template <class Function, class Handler>
boost::asio::asio_handler_invoke_is_deprecated asio_handler_invoke(const Function& function,
                                                                   draining_handler<Handler>* h) {
  boost_asio_handler_invoke_helpers::invoke(function, h->handler_);
}
#endif

}  // namespace ipckit::detail

template <template <typename, typename> class Associator, typename Handler, typename DefaultCandidate>
struct boost::asio::associator<Associator, ipckit::detail::draining_handler<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const ipckit::detail::draining_handler<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler_);
  }
  static auto get(const ipckit::detail::draining_handler<Handler>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler_, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler_, c);
  }
};

// Reading Asio 1.81's private members (its scheduler's queue, its epoll reactor's
// descriptor), which ipckit's loop needs where Asio has no public way (docs/architecture.md).
#pragma once

#include <boost/version.hpp>

namespace boost::asio::detail {
class epoll_reactor;
}

static_assert(BOOST_VERSION / 100 == 1081, "ipckit reads Asio 1.81's private members");

namespace ipckit::detail {

// The reactor's epoll descriptor, which Asio keeps private: polled descriptors register
// in it and the idle-loop watcher watches it (polled_descriptor.cpp defines it).
int reactor_epoll_descriptor(boost::asio::detail::epoll_reactor& reactor) noexcept;

// The rules of access do not apply to the template arguments of an explicit
// instantiation, so one can define a friend that returns a pointer to a private member.
template <class Tag, auto Pointer>
struct expose {
  friend auto member(Tag) { return Pointer; }
};

template <class Tag, class Object>
auto& private_field(Object& object) {
  return object.*member(Tag{});
}

}  // namespace ipckit::detail

// Defines `tag`, which names `pointer` (a pointer to a private member) for private_field<tag>(),
// in namespace ipckit::detail (an explicit instantiation must be in one enclosing its
// template's). One definition per tag name in the program.
#define IPCKIT_EXPOSE(tag, pointer) \
  struct tag {                      \
    friend auto member(tag);        \
  };                                \
  template struct ::ipckit::detail::expose<tag, pointer>

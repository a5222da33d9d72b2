#include <ipckit/detail/polled_descriptor.hpp>

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include <unistd.h>

namespace ipckit::detail {
namespace {

boost::asio::detail::reactor& reactor_of(const boost::asio::any_io_executor& ex) {
  auto& context = boost::asio::query(ex, boost::asio::execution::context);
  auto& reactor = boost::asio::use_service<boost::asio::detail::reactor>(context);
  reactor.init_task();  // the scheduler runs the reactor (Asio's descriptor service does this too)
  return reactor;
}

}  // namespace

polled_descriptor::polled_descriptor(const executor_type& ex)
    : executor_(ex), reactor_(&reactor_of(ex)), scheduler_(scheduler_of(boost::asio::query(ex, boost::asio::execution::context))) {}

polled_descriptor::polled_descriptor(polled_descriptor&& other) noexcept
    : executor_(other.executor_),
      reactor_(other.reactor_),
      scheduler_(other.scheduler_),
      fd_(other.fd_),
      data_(other.data_) {
  other.fd_ = -1;
  other.data_ = nullptr;
}

polled_descriptor& polled_descriptor::operator=(polled_descriptor&& other) noexcept {
  if (this != &other) {
    close();
    executor_ = other.executor_;
    reactor_ = other.reactor_;
    scheduler_ = other.scheduler_;
    fd_ = other.fd_;
    data_ = other.data_;
    other.fd_ = -1;
    other.data_ = nullptr;
  }
  return *this;
}

polled_descriptor::~polled_descriptor() { close(); }

void polled_descriptor::assign(int fd) noexcept {
  close();
  fd_ = fd;
}

void polled_descriptor::enroll(error_code& ec) noexcept {
  if (const int error = reactor_->register_descriptor(fd_, data_)) {
    ec.assign(error, boost::system::system_category());
    reactor_->cleanup_descriptor_data(data_);
    data_ = nullptr;
  }
}

void polled_descriptor::close() noexcept {
  if (fd_ < 0) return;
  if (data_) {
    // Not `closing`: a duplicate of the descriptor (a child's, native_handle's) would keep
    // it in the epoll set, so it is taken out explicitly.
    reactor_->deregister_descriptor(fd_, data_, false);
  }
  ::close(fd_);
  if (data_) reactor_->cleanup_descriptor_data(data_);
  fd_ = -1;
  data_ = nullptr;
}

void polled_descriptor::cancel() noexcept {
  if (data_) reactor_->cancel_ops(fd_, data_);
}

}  // namespace ipckit::detail

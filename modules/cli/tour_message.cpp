// Tour row "json messages": length-prefixed JSON between the tour and a child of itself
// over the child's stdin and stdout (ipckit pipes on the tour's side).
#include "tour.hpp"

#include <ipckit/message.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/unique_fd.hpp>

#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/writable_pipe.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace ipckit::cli {
namespace {

using clock = std::chrono::steady_clock;
constexpr int exchanges = 200;

int json_child(std::span<const std::string>) {
  boost::asio::io_context io;
  json_channel<boost::asio::readable_pipe> in(boost::asio::readable_pipe(io, ::dup(0)));
  json_channel<boost::asio::writable_pipe> out(boost::asio::writable_pipe(io, ::dup(1)));
  for (;;) {
    error_code ec;
    auto message = in.receive(ec);
    if (ec == boost::asio::error::eof) return 0;
    if (ec) return 1;
    message["pid"] = ::getpid();
    out.send(message);
  }
}

tour_result json_row(tour_context& context) {
  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) throw_error(last_error(), {"pipe", "", "", "", "pipe2"});
  unique_fd child_in(to_child[0]), parent_out(to_child[1]);
  if (::pipe2(from_child, O_CLOEXEC) != 0) throw_error(last_error(), {"pipe", "", "", "", "pipe2"});
  unique_fd parent_in(from_child[0]), child_out(from_child[1]);
  auto child = context.start_child("json messages", {}, {{child_in.get(), 0}, {child_out.get(), 1}});
  child_in.reset();
  child_out.reset();
  auto ex = context.loop().get_executor();
  // The tour's ends are ipckit pipes, whose deadline bounds every blocking call: a child
  // that stops answering fails the row instead of hanging the tour.
  json_channel<pipe_writer> out(pipe_writer(ex, std::move(parent_out)));
  json_channel<pipe_reader> in(pipe_reader(ex, std::move(parent_in)));
  out.next_layer().expires_after(std::chrono::seconds(10));
  in.next_layer().expires_after(std::chrono::seconds(10));
  std::vector<std::chrono::nanoseconds> times;
  int child_pid = 0;
  for (int i = 0; i < exchanges; ++i) {
    const auto start = clock::now();
    error_code ec;
    out.send({{"seq", i}, {"text", "hello"}}, ec);
    auto reply = ec ? nlohmann::json() : in.receive(ec);
    if (ec) return {false, std::nullopt, std::nullopt, "exchange " + std::to_string(i) + ": " + error_text(ec)};
    times.push_back(clock::now() - start);
    if (reply["seq"] != i) return {false, std::nullopt, std::nullopt, "reply out of order"};
    child_pid = reply["pid"].get<int>();
  }
  out.next_layer().close();
  const int expected_pid = child.pid();
  const auto status = child.wait(std::chrono::seconds(10));
  const bool ok = status == 0 && child_pid == expected_pid;
  return {ok, std::nullopt, median_us(times),
          std::to_string(exchanges) + " length-prefixed JSON round trips over the child's stdio" +
              (ok ? "" : "; child status " + (status ? std::to_string(*status) : std::string("timeout")))};
}

const tour_registration row{{500, "json messages", json_row, json_child}};

}  // namespace
}  // namespace ipckit::cli

// `ipckit fifo make|read|write`: named pipes from the shell, never blocking on ENXIO.
#include "command.hpp"
#include "stdio_relay.hpp"

#include <ipckit/event_loop.hpp>
#include <ipckit/pipe.hpp>

#include <boost/asio/write.hpp>

#include <array>
#include <unistd.h>

namespace ipckit::cli {
namespace {

constexpr flag_spec fifo_flags[] = {{"mode", true}, {"keep", false}, {"timeout", true}};

int fifo_command(std::span<const std::string> raw) {
  const auto args = arguments::parse(raw, fifo_flags);
  const auto& words = args.positional();
  if (words.size() != 2) throw usage_error("expected make|read|write PATH");
  const std::string& action = words[0];
  const std::filesystem::path path = words[1];
  event_loop loop;
  std::array<char, 65536> buffer{};

  if (action == "make") {
    const auto mode = args.value("mode").value_or("0600");
    make_fifo(path, static_cast<mode_t>(std::stoul(mode, nullptr, 8)));
    return exit_ok;
  }
  if (action == "read") {
    pipe_reader reader = args.has("keep") ? open_fifo_server(loop.get_executor(), path)
                                          : open_fifo_reader(loop.get_executor(), path);
    for (;;) {
      error_code ec;
      const std::size_t n = reader.read_some(boost::asio::buffer(buffer), ec);
      if (ec == boost::asio::error::eof) return exit_ok;
      if (ec) throw_error(ec, {"read", "fifo", "", path.string(), "read"});
      write_stdout({buffer.data(), n});
    }
  }
  if (action == "write") {
    pipe_writer writer = open_fifo_writer(loop.get_executor(), path,
                                          args.duration("timeout").value_or(std::chrono::nanoseconds{0}));
    for (;;) {
      ssize_t n;
      do n = ::read(0, buffer.data(), buffer.size());
      while (n < 0 && errno == EINTR);
      if (n < 0) throw_error(last_error(), {"read", "", "", "stdin", "read"});
      if (n == 0) return exit_ok;
      boost::asio::write(writer, boost::asio::buffer(buffer.data(), static_cast<std::size_t>(n)));
    }
  }
  throw usage_error("unknown action \"" + action + "\" (make, read or write)");
}

const registration fifo_registration{{
    "fifo",
    "make, read and write named pipes",
    "Usage: ipckit fifo make [--mode OCTAL] PATH\n"
    "       ipckit fifo read [--keep] PATH\n"
    "       ipckit fifo write [--timeout D] PATH\n\n"
    "make   creates the FIFO (mode 0600 unless --mode), or reuses an existing one; a path\n"
    "       that is something else is an error.\n"
    "read   prints what writers send until the last writer closes; with --keep it goes\n"
    "       on as writers come and go (stop it with Ctrl-C).\n"
    "write  waits for a reader (up to --timeout D, a Go duration; forever by default),\n"
    "       then copies stdin to the FIFO. It never fails with ENXIO for want of a reader.\n\n"
    "Example:\n"
    "  ipckit fifo make /tmp/f && (ipckit fifo read /tmp/f &) && echo hi | ipckit fifo write /tmp/f\n",
    fifo_command,
}};

}  // namespace
}  // namespace ipckit::cli

// What any pipe can stream with both processes on one CPU, without ipckit: the ceiling
// behind the "pipes stream at least 2.5x the raw default pipe" target
// (docs/performance-findings.md, finding 8). Built with `meson configure build
// -Dbenchmarks=true`:
//   build/tests/bench/pipe_ceiling [ROUNDS] [MIB] [WAY]
// Each round streams MIB MiB (default 1024) in 64 KiB chunks from a forked child to its
// parent, both on CPU 0, once per way; it prints the medians of ROUNDS rounds (default
// 3) in MB/s, the ratio to the first way (the raw default pipe, as ipckit bench's raw
// ways) and the context switches of both processes per 64 KiB.
//   write           write + read, default pipe (64 KiB)
//   write 1MiB      the same through a 1 MiB pipe (F_SETPIPE_SZ), as ipckit's pipes
//   vmsplice        the writer hands its pages to the pipe instead of copying them: one
//                   copy fewer. Not usable behind a write() (the caller may reuse its
//                   buffer while the pipe still points at it); here only as a bound
//   vmsplice 1MiB   the same through a 1 MiB pipe
// and, for scale, `memcpy`: one user-space copy of a hot 64 KiB buffer, no kernel.
// WAY (one of the names above, quoted) runs that way alone, for `perf record -g`.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;
constexpr std::size_t chunk = 64 * 1024;

void check(bool ok, const char* what) {
  if (!ok) {
    std::perror(what);
    std::exit(1);
  }
}

struct way {
  const char* name;
  int pipe_size;  // 0: the kernel's default
  bool by_vmsplice;  // else write()
};

struct figures {
  double mb_per_s;
  double switches_per_chunk;
};

long switches(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return u.ru_nvcsw + u.ru_nivcsw;
}

void write_all(int fd, const char* data, bool by_vmsplice) {
  std::size_t done = 0;
  while (done < chunk) {
    const ::iovec rest{const_cast<char*>(data) + done, chunk - done};
    const long n = by_vmsplice ? ::vmsplice(fd, &rest, 1, 0) : ::write(fd, rest.iov_base, rest.iov_len);
    check(n > 0 || errno == EINTR, by_vmsplice ? "vmsplice" : "write");
    if (n > 0) done += static_cast<std::size_t>(n);
  }
}

figures stream(const way& w, std::size_t total) {
  int fds[2];
  check(::pipe2(fds, O_CLOEXEC) == 0, "pipe2");
  if (w.pipe_size) check(::fcntl(fds[1], F_SETPIPE_SZ, w.pipe_size) >= 0, "F_SETPIPE_SZ");
  std::vector<char> buffer(chunk, 's');
  const long parent_before = switches(RUSAGE_SELF);
  const long children_before = switches(RUSAGE_CHILDREN);
  const auto start = clk::now();
  const pid_t child = ::fork();
  check(child >= 0, "fork");
  if (child == 0) {
    ::close(fds[0]);
    for (std::size_t sent = 0; sent < total; sent += chunk) write_all(fds[1], buffer.data(), w.by_vmsplice);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::size_t got = 0;
  for (long n; (n = ::read(fds[0], buffer.data(), chunk)) != 0;) {
    check(n > 0 || errno == EINTR, "read");
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  int status = 0;
  check(::waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child");
  const std::chrono::duration<double> took = clk::now() - start;
  ::close(fds[0]);
  check(got == total, "short stream");
  const long switched = switches(RUSAGE_SELF) - parent_before + switches(RUSAGE_CHILDREN) - children_before;
  return {static_cast<double>(total) / 1e6 / took.count(), static_cast<double>(switched) / (total / chunk)};
}

double memcpy_rate(std::size_t total) {
  std::vector<char> from(chunk, 'm'), to(chunk);
  const auto start = clk::now();
  for (std::size_t copied = 0; copied < total; copied += chunk) {
    std::memcpy(to.data(), from.data(), chunk);
    asm volatile("" : : "r"(to.data()) : "memory");  // the copy is not optimised away
  }
  const std::chrono::duration<double> took = clk::now() - start;
  return static_cast<double>(total) / 1e6 / took.count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 3;
  const std::size_t total = (argc > 2 ? std::max(1L, std::atol(argv[2])) : 1024L) << 20;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  check(::sched_setaffinity(0, sizeof one, &one) == 0, "sched_setaffinity");  // the child inherits it

  const way ways[] = {{"write", 0, false}, {"write 1MiB", 1 << 20, false},
                      {"vmsplice", 0, true}, {"vmsplice 1MiB", 1 << 20, true}};
  // The ways [first, last): all of them (and memcpy), or the one WAY names.
  std::size_t first = 0, last = std::size(ways);
  if (argc > 3) {
    const way* named = std::find_if(std::begin(ways), std::end(ways),
                                    [&](const way& w) { return std::string(argv[3]) == w.name; });
    if (named == std::end(ways)) {
      std::fprintf(stderr, "pipe_ceiling: no way called \"%s\"\n", argv[3]);
      return 2;
    }
    first = static_cast<std::size_t>(named - ways);
    last = first + 1;
  }
  const bool all = last - first == std::size(ways);
  std::vector<std::vector<double>> rates(std::size(ways)), switched(std::size(ways));
  std::vector<double> copies;
  // Rounds alternate the ways, so that a slow spell of the machine hits each alike.
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = first; i < last; ++i) {
      const figures f = stream(ways[i], total);
      rates[i].push_back(f.mb_per_s);
      switched[i].push_back(f.switches_per_chunk);
    }
    if (all) copies.push_back(memcpy_rate(total));
  }
  std::printf("%zu MiB in 64 KiB chunks, one CPU, medians of %d rounds\n", total >> 20, rounds);
  const double base = median(rates[first]);
  for (std::size_t i = first; i < last; ++i) {
    std::printf("%-14s %7.0f MB/s  %.2fx  %.2f context switches per 64 KiB\n", ways[i].name,
                median(rates[i]), median(rates[i]) / base, median(switched[i]));
  }
  if (all) std::printf("%-14s %7.0f MB/s  %.2fx\n", "memcpy", median(copies), median(copies) / base);
}

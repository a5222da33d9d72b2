// The environment variables that steer the dynamic loader and glibc in a child: the
// list glibc's secure mode (AT_SECURE) removes, plus every LD_* and MALLOC_* knob.
#include <ipckit/process.hpp>

#include <algorithm>
#include <array>

namespace ipckit {
namespace {

// glibc 2.36 sysdeps/generic/unsecvars.h (UNSECURE_ENVVARS) and GLIBC_TUNABLES; the
// LD_ and MALLOC_ names in it are covered by the prefixes below.
constexpr std::array<std::string_view, 12> glibc_unsecure_names = {
    "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES",      "LOCALDOMAIN", "LOCPATH",
    "NIS_PATH",   "NLSPATH",     "RESOLV_HOST_CONF", "RES_OPTIONS",    "TMPDIR",      "TZDIR",
};

// Any loader variable (ld.so reads every LD_*; new ones appear) and any allocator knob
// (glibc's MALLOC_CHECK_, MALLOC_TRACE, MALLOC_PERTURB_ …; jemalloc's MALLOC_CONF).
constexpr std::array<std::string_view, 2> unsafe_prefixes = {"LD_", "MALLOC_"};

}  // namespace

bool unsafe_env_name(std::string_view name) noexcept {
  if (std::find(glibc_unsecure_names.begin(), glibc_unsecure_names.end(), name) !=
      glibc_unsecure_names.end())
    return true;
  return std::any_of(unsafe_prefixes.begin(), unsafe_prefixes.end(),
                     [name](std::string_view prefix) { return name.starts_with(prefix); });
}

std::vector<std::string> scrub_env(std::vector<std::string> env) {
  std::erase_if(env, [](const std::string& entry) {
    return unsafe_env_name(std::string_view(entry).substr(0, entry.find('=')));
  });
  return env;
}

}  // namespace ipckit

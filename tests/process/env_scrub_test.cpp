// Children started with a scrubbed environment: the loader and glibc variables in this
// process's environment (LD_PRELOAD and friends) never reach them.
#include <ipckit/process.hpp>

#include "process_util.hpp"

#include <boost/asio/io_context.hpp>
#include <gmock/gmock.h>

#include <cstdlib>

namespace {

using ipckit::test::helper_path;
using testing::ElementsAre;

// Sets variables in this process's environment for one test and restores them after.
class scoped_env {
 public:
  scoped_env(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name, value, 1);
    }
  }
  ~scoped_env() {
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class process_env_scrub : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  static std::vector<std::string> getenv_args() {
    return {"getenv", "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GLIBC_TUNABLES", "MALLOC_CHECK_",
            "GCONV_PATH", "IPCKIT_KEPT"};
  }
  // The same report as the helper's `getenv` mode, from python3. With LD_AUDIT set, a
  // child built with -fsanitize=thread cannot start at all (the loader cannot place
  // libtsan.so: "cannot allocate memory in static TLS block"), so the control below
  // must not be a program of this build.
  static std::vector<std::string> python_getenv_args() {
    auto args = getenv_args();
    args[0] = "import os, sys\n"
              "for n in sys.argv[1:]: print(n + '=' + os.environ[n] if n in os.environ else n + ' unset')";
    args.insert(args.begin(), {"-S", "-c"});
    return args;
  }
};

TEST_F(process_env_scrub, scrubbed_child_has_no_ld_preload_even_if_the_parent_has_it) {
  // A preload that does not exist: the loader only warns (on the child's stderr, which
  // output() keeps away from stdout) and runs the child.
  scoped_env env{{"LD_PRELOAD", "/nonexistent/ipckit-test-preload.so"},
                 {"LD_LIBRARY_PATH", "/nonexistent/lib"},
                 {"LD_AUDIT", "/nonexistent/audit.so"},
                 {"GLIBC_TUNABLES", "glibc.malloc.check=3"},
                 {"MALLOC_CHECK_", "3"},
                 {"GCONV_PATH", "/nonexistent/gconv"},
                 {"IPCKIT_KEPT", "yes"}};

  ipckit::command inherited(io.get_executor(), "python3", python_getenv_args());
  EXPECT_EQ(process_test::trim(inherited.output()),
            "LD_PRELOAD=/nonexistent/ipckit-test-preload.so\nLD_LIBRARY_PATH=/nonexistent/lib\n"
            "LD_AUDIT=/nonexistent/audit.so\nGLIBC_TUNABLES=glibc.malloc.check=3\nMALLOC_CHECK_=3\n"
            "GCONV_PATH=/nonexistent/gconv\nIPCKIT_KEPT=yes")
      << "without scrubbing the child inherits them (the control)";

  ipckit::command scrubbed(io.get_executor(), "python3", python_getenv_args());
  scrubbed.set_scrub_env();
  EXPECT_EQ(process_test::trim(scrubbed.output()),
            "LD_PRELOAD unset\nLD_LIBRARY_PATH unset\nLD_AUDIT unset\nGLIBC_TUNABLES unset\n"
            "MALLOC_CHECK_ unset\nGCONV_PATH unset\nIPCKIT_KEPT=yes");
}

TEST_F(process_env_scrub, scrubbing_applies_to_an_explicit_env_list) {
  ipckit::command cmd(io.get_executor(), helper_path(), {"getenv", "LD_PRELOAD", "A"});
  cmd.set_env({"LD_PRELOAD=/nonexistent/x.so", "A=1", "TMPDIR=/tmp/elsewhere"});
  cmd.set_scrub_env();
  EXPECT_THAT(cmd.environ(), ElementsAre("A=1"));
  EXPECT_EQ(process_test::trim(cmd.output()), "LD_PRELOAD unset\nA=1");
}

TEST_F(process_env_scrub, setenv_on_top_of_a_scrub_is_passed_on_purpose) {
  scoped_env env{{"TMPDIR", "/tmp/from-the-parent"}};
  ipckit::command cmd(io.get_executor(), helper_path(), {"getenv", "TMPDIR"});
  cmd.set_scrub_env();
  EXPECT_EQ(process_test::trim(cmd.output()), "TMPDIR unset");
  ipckit::command chosen(io.get_executor(), helper_path(), {"getenv", "TMPDIR"});
  chosen.set_scrub_env();
  chosen.setenv("TMPDIR", "/tmp/chosen");
  EXPECT_EQ(process_test::trim(chosen.output()), "TMPDIR=/tmp/chosen");
}

TEST_F(process_env_scrub, unsafe_env_names_are_glibcs_secure_list_and_every_ld_and_malloc_name) {
  for (const char* name : {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "LD_DEBUG", "LD_DEBUG_OUTPUT",
                           "LD_PROFILE", "LD_ORIGIN_PATH", "LD_SHOW_AUXV", "LD_DYNAMIC_WEAK",
                           "LD_HWCAP_MASK", "LD_USE_LOAD_BIAS", "LD_BIND_NOW", "GLIBC_TUNABLES",
                           "MALLOC_CHECK_", "MALLOC_TRACE", "MALLOC_PERTURB_", "GCONV_PATH",
                           "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH",
                           "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR"})
    EXPECT_TRUE(ipckit::unsafe_env_name(name)) << name;
  for (const char* name : {"PATH", "HOME", "LANG", "TZ", "USER", "ld_preload", "XLD_PRELOAD", "LD", ""})
    EXPECT_FALSE(ipckit::unsafe_env_name(name)) << name;
  EXPECT_THAT(ipckit::scrub_env({"PATH=/bin", "LD_PRELOAD=x", "LD_AUDIT", "HOME=/root"}),
              ElementsAre("PATH=/bin", "HOME=/root"));
}

}  // namespace

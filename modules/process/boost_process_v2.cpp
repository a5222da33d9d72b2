// Boost.Process v2 is compiled separately in 1.81 (design.md §5): this is its one
// translation unit, so that programs linking ipckit may use it beside ipckit::command.
// ipckit::command itself uses fork/exec (see spawn.cpp and docs/process.md).
#include <boost/process/v2/src.hpp>

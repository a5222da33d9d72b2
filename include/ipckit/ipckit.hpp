// The whole toolkit in one include. Each module also has a header of its own.
#pragma once

#include <ipckit/duration.hpp>
#include <ipckit/error.hpp>
#include <ipckit/event_loop.hpp>
#include <ipckit/net.hpp>
#include <ipckit/unique_fd.hpp>

// The whole toolkit in one include. Each module also has a header of its own.
#pragma once

#include <ipckit/duration.hpp>
#include <ipckit/error.hpp>
#include <ipckit/event_loop.hpp>
#include <ipckit/pipe.hpp>
#include <ipckit/process.hpp>
#include <ipckit/net.hpp>
#include <ipckit/unique_fd.hpp>
#include <ipckit/message.hpp>
#include <ipckit/signal.hpp>
#include <ipckit/file_lock.hpp>
#include <ipckit/message_queue.hpp>
#include <ipckit/semaphore.hpp>

#include <ipckit/pipe.hpp>

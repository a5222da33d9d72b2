#!/usr/bin/env python3
"""Distinct 64-byte cache lines and 4 KiB pages one process touches per round trip.

For tests/bench/pipe_micro under valgrind's lackey (docs/performance-findings.md,
finding 4), which logs every instruction fetch and data access of each process:

  valgrind --tool=lackey --trace-mem=yes --log-file=/tmp/lk.%p \\
      build/tests/bench/pipe_micro WAY 300 1
  tests/bench/touched_lines.py /tmp/lk.PID 330

The second argument is how many exchanges the process made (pipe_micro's warm-up of
max(10, N/10) plus N). The trace is cut at an instruction run exactly that often, the
first such one, so each window is one exchange; the medians are over the last three
quarters of the windows.
"""
import collections
import statistics
import sys


def main():
    path, exchanges = sys.argv[1], int(sys.argv[2])
    events = []
    fetches = collections.Counter()
    with open(path) as trace:
        for line in trace:
            kind = line[:2].strip()
            if kind not in ('I', 'L', 'S', 'M'):
                continue
            try:
                address = int(line[3:].split(',')[0], 16)
            except ValueError:
                continue
            events.append((kind == 'I', address))
            if kind == 'I':
                fetches[address] += 1
    cut = next((a for is_code, a in events if is_code and fetches[a] == exchanges), None)
    if cut is None:
        sys.exit(f'{path}: no instruction ran exactly {exchanges} times')
    windows, window = [], None
    for is_code, address in events:
        if is_code and address == cut:
            if window:
                windows.append(window)
            window = {'instructions': 0, 'code lines': set(), 'data lines': set(),
                      'code pages': set(), 'data pages': set()}
        if window is None:
            continue
        side = 'code' if is_code else 'data'
        window['instructions'] += is_code
        window[side + ' lines'].add(address >> 6)
        window[side + ' pages'].add(address >> 12)
    steady = windows[len(windows) // 4:]
    figures = {key: statistics.median(len(w[key]) if isinstance(w[key], set) else w[key] for w in steady)
               for key in steady[0]}
    print(f'{path}: {len(steady)} exchanges; ' + ', '.join(f'{k} {v:g}' for k, v in figures.items()))


if __name__ == '__main__':
    main()

#!/usr/bin/env bash
# Prints the facts docs/benchmarks.md records next to every table: CPU, cores, kernel,
# virtualisation, toolchain. Run it on the machine that produced the figures.
set -u
echo "date:      $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu:       $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "cores:     $(nproc)"
echo "hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"
echo "kernel:    $(uname -r)"
echo "memory:    $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
echo "rustc:     $(rustc --version)"
echo "python:    $(python3 --version 2>&1)"
